"""Summarise a `mutmut results --all true` listing: the score per module and every survivor.

Used by `make mutate` (run from the project root, after `mutmut run`). Prints a Markdown table
for docs/testing.md, then every surviving mutant, split into *message* mutants (only the text
of an error message changed: "XX...XX", upper case, or None) and the rest, and writes each
survivor's diff to mutants/survivors.diff.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

# Mutated but not scored: benchmark code that checks nothing (mutmut's do_not_mutate_patterns does
# not exclude a whole function, and proofs.py is not ours to annotate with pragmas).
NOT_SCORED = ("eventstore.proofs.x_bench_checkpoint__",)

_STRING = re.compile(r"""f?"(?:[^"\\]|\\.)*"|f?'(?:[^'\\]|\\.)*'|\bNone\b""")


def module_of(name: str) -> str:
    return ".".join(name.split(".")[:2])


def is_message_only(diff: str) -> bool:
    """True if the mutant changed nothing but string literals inside a raise (error text)."""
    minus = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    plus = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    if not minus or len(minus) != len(plus):
        return False
    text = "\n".join(minus)
    if "raise " not in text and "Error(" not in text and "message=" not in text:
        return False
    return [_STRING.sub("S", m) for m in minus] == [_STRING.sub("S", p) for p in plus]


def main(path: str) -> int:
    statuses: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name and not name.startswith(NOT_SCORED):
            statuses[name] = status
    diffs: dict[str, str] = {}
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant
    except ImportError:
        get_diff_for_mutant = None  # type: ignore[assignment]
    # a timeout is a mutant the tests noticed (it made them hang), so it counts as killed
    statuses = {n: "killed" if s in ("timeout", "caught by type check") else s for n, s in statuses.items()}
    survivors = [n for n, s in statuses.items() if s not in ("killed", "not checked")]
    if get_diff_for_mutant is not None:
        for name in survivors:
            diffs[name] = get_diff_for_mutant(name, path=Path(*module_of(name).split(".")).with_suffix(".py"))
    message = {n for n in survivors if is_message_only(diffs.get(n, ""))}
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in statuses.items():
        by_module[module_of(name)]["message" if name in message else status] += 1
    print(
        "| module | mutants | killed | survived: message text | survived: other | score | score without message text |"
    )
    print("|---|---|---|---|---|---|---|")
    total: Counter[str] = Counter()
    for module, c in sorted(by_module.items()) + [("all", total)]:
        if module != "all":
            total.update(c)
        n = sum(c.values())
        other = n - c["killed"] - c["message"]
        print(
            f"| {module} | {n} | {c['killed']} | {c['message']} | {other} | {100 * c['killed'] / max(n, 1):.1f}% | "
            f"{100 * c['killed'] / max(n - c['message'], 1):.1f}% |"
        )
    with open("mutants/survivors.diff", "w") as out:
        for name in survivors:
            out.write(
                f"# {name}: {statuses[name]}{' (message text)' if name in message else ''}\n{diffs.get(name, '')}\n"
            )
    print(f"\nsurvivors other than message text ({len(survivors) - len(message)}):")
    for name in survivors:
        if name not in message:
            print(f"  {name}: {statuses[name]}")
    print(f"\nmessage-text survivors ({len(message)}): {' '.join(sorted(message))}")
    print("diffs of all survivors: mutants/survivors.diff")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "mutants/results.txt"))
