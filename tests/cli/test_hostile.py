"""Every CLI command against hostile arguments and files: a verdict or a one-line error, never a traceback.

Each case runs with EVENTSTORE_DEBUG=1, so an unexpected exception (a bug) surfaces as a
traceback and fails the test, instead of the CLI's one-line "internal error" safety net.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventstore import EventStore, NewEvent
from eventstore.cli import main

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
BAD_NAMES = ["\udcff\udcfe", "\ud800", "a\udc80b", "x" * 100_000]
BIG = [str(2**63), str(2**64), "-1", "0", str(10**40)]

Case = tuple[str, Callable[[Path], list[str]]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a small log, a log key, a witness key, a checkpoint and a receipt."""
    d = tmp_path_factory.mktemp("hostile")
    with EventStore.open(d / "log.db") as store:
        receipts = [store.append(f"s{i % 3}", [NewEvent(type="note", data={"i": i})])[0] for i in range(40)]
    r = CliRunner()
    assert r.invoke(main, ["keygen", "--name", "example.com/log", "--out", str(d / "key")]).exit_code == 0
    assert r.invoke(main, ["keygen", "--name", "witness", "--cosigner", "--out", str(d / "wkey")]).exit_code == 0
    cp = r.invoke(main, ["--db", str(d / "log.db"), "checkpoint", "--key", str(d / "key")])
    assert cp.exit_code == 0, cp.output
    (d / "cp.txt").write_text(cp.stdout)
    (d / "receipt.json").write_text(json.dumps({f: getattr(receipts[3], f) for f in receipts[3].__struct_fields__}))
    (d / "empty").write_bytes(b"")
    (d / "junk").write_bytes(os.urandom(4096))
    (d / "badutf8").write_bytes(b"\xff\xfe\x80 not text\n")
    (d / "deep.json").write_text(DEEP)
    (d / "deep.jsonl").write_text(json.dumps({"stream": "s", "type": "note", "data": {}})[:-3] + DEEP_OBJECT + "}\n")
    (d / "badutf8.jsonl").write_bytes(b'{"stream": "s\xff", "type": "note", "data": {}}\n')
    (d / "surrogate.jsonl").write_text('{"stream": "\\ud800", "type": "note", "data": {"k": "\\udcff"}}\n')
    key = (d / "key" / "signing.key").read_text()
    (d / "tampered.key").write_text(key[:-5] + ("A" if key[-5] != "A" else "B") + key[-4:])
    (d / "truncated.key").write_text(key[: len(key) // 2])
    pub = (d / "key" / "verifier.pub").read_text()
    (d / "tampered.pub").write_text(pub[:-5] + ("A" if pub[-5] != "A" else "B") + pub[-4:])
    (d / "allzero.pub").write_text(pub.rsplit("+", 1)[0] + "+AQ" + "A" * 42 + "\n")
    (d / "state.json").write_text(DEEP)
    (d / "badstate.json").write_text(
        json.dumps({"origin": "example.com/log", "tree_size": -5, "root": "!!", "checkpoint": ""})
    )
    (d / "proof.json").write_text(json.dumps({"kind": "inclusion", "leaf_index": 2**64, "tree_size": -1}))
    return d


def _cases() -> list[Case]:
    c: list[Case] = []
    log = lambda d: ["--db", str(d / "log.db")]  # noqa: E731
    # names and payloads: invalid UTF-8 (surrogate-escaped by Python), lone surrogates, huge
    for bad in BAD_NAMES:
        c += [
            ("append --stream", lambda d, b=bad: [*log(d), "append", "--stream", b, "--type", "t", "--data", "{}"]),
            ("append --type", lambda d, b=bad: [*log(d), "append", "--stream", "s", "--type", b, "--data", "{}"]),
            (
                "append --data",
                lambda d, b=bad: [
                    *log(d),
                    "append",
                    "--stream",
                    "s",
                    "--type",
                    "t",
                    "--data",
                    json.dumps({"k": b}, ensure_ascii=False),
                ],
            ),
            (
                "append --data key",
                lambda d, b=bad: [*log(d), "append", "--stream", "s", "--type", "t", "--data", '{"' + b + '": 1}'],
            ),
            (
                "append --metadata",
                lambda d, b=bad: [
                    *log(d),
                    "append",
                    "--stream",
                    "s",
                    "--type",
                    "t",
                    "--data",
                    "{}",
                    "--metadata",
                    '{"' + b + '": 1}',
                ],
            ),
            ("erase --subject", lambda d, b=bad: [*log(d), "erase", "--subject", b, "--requested-by", "x"]),
            ("erase --requested-by", lambda d, b=bad: [*log(d), "erase", "--subject", "x", "--requested-by", b]),
            ("read --stream", lambda d, b=bad: [*log(d), "read", "--stream", b]),
            ("keygen --name", lambda d, b=bad: ["keygen", "--name", b, "--out", str(d / "newkey")]),
            ("--db name", lambda d, b=bad: ["--db", str(d / b[:50]), "verify"]),
            ("--db name init", lambda d, b=bad: ["--db", str(d / b[:50]), "init"]),
            ("project rebuild", lambda d, b=bad: [*log(d), "project", "rebuild", b]),
        ]
    for deep in (DEEP_OBJECT, '{"a":' + DEEP + "}", '{"a":' * 990 + "1" + "}" * 990):
        c += [
            ("append --data deep", lambda d, x=deep: [*log(d), "append", "--stream", "s", "--type", "t", "--data", x]),
            (
                "append --metadata deep",
                lambda d, x=deep: [*log(d), "append", "--stream", "s", "--type", "t", "--data", "{}", "--metadata", x],
            ),
        ]
    # deep JSON and undecodable files
    for f in (
        "deep.json",
        "badutf8",
        "junk",
        "empty",
        "deep.jsonl",
        "badutf8.jsonl",
        "surrogate.jsonl",
        "missing",
        ".",
    ):
        c += [
            (f"append --jsonl {f}", lambda d, f=f: [*log(d), "append", "--jsonl", str(d / f)]),
            (f"verify-receipt {f}", lambda d, f=f: [*log(d), "verify-receipt", str(d / f)]),
            (
                f"verify-proof {f}",
                lambda d, f=f: [
                    "verify-proof",
                    str(d / f),
                    "--checkpoint",
                    str(d / "cp.txt"),
                    "--public-key",
                    str(d / "key/verifier.pub"),
                ],
            ),
            (
                f"verify-proof cp {f}",
                lambda d, f=f: [
                    "verify-proof",
                    str(d / "proof.json"),
                    "--checkpoint",
                    str(d / f),
                    "--public-key",
                    str(d / "key/verifier.pub"),
                ],
            ),
            (
                f"verify --checkpoint {f}",
                lambda d, f=f: [
                    *log(d),
                    "verify",
                    "--checkpoint",
                    str(d / f),
                    "--public-key",
                    str(d / "key/verifier.pub"),
                ],
            ),
            (
                f"verify --state {f}",
                lambda d, f=f: [
                    *log(d),
                    "verify",
                    "--checkpoint",
                    str(d / "cp.txt"),
                    "--public-key",
                    str(d / "key/verifier.pub"),
                    "--state",
                    str(d / f),
                ],
            ),
            (
                f"prove inclusion {f}",
                lambda d, f=f: [*log(d), "prove", "inclusion", "--position", "1", "--checkpoint", str(d / f)],
            ),
            (f"receipt {f}", lambda d, f=f: [*log(d), "receipt", "--position", "1", "--checkpoint", str(d / f)]),
            (f"checkpoint --key {f}", lambda d, f=f: [*log(d), "checkpoint", "--key", str(d / f)]),
            (
                f"verify --public-key {f}",
                lambda d, f=f: [*log(d), "verify", "--checkpoint", str(d / "cp.txt"), "--public-key", str(d / f)],
            ),
            (
                f"cosign --state {f}",
                lambda d, f=f: [
                    *log(d),
                    "cosign",
                    "--key",
                    str(d / "wkey"),
                    "--checkpoint",
                    str(d / "cp.txt"),
                    "--public-key",
                    str(d / "key/verifier.pub"),
                    "--state",
                    str(d / f),
                ],
            ),
        ]
    c.append(
        (
            "verify --state badstate",
            lambda d: [
                *log(d),
                "verify",
                "--checkpoint",
                str(d / "cp.txt"),
                "--public-key",
                str(d / "key/verifier.pub"),
                "--state",
                str(d / "badstate.json"),
            ],
        )
    )
    # positions beyond SQLite's integers, negative, zero
    for n in BIG:
        c += [
            (
                f"prove inclusion {n}",
                lambda d, n=n: [*log(d), "prove", "inclusion", "--position", n, "--checkpoint", str(d / "cp.txt")],
            ),
            (f"receipt {n}", lambda d, n=n: [*log(d), "receipt", "--position", n, "--checkpoint", str(d / "cp.txt")]),
            (f"read --from {n}", lambda d, n=n: [*log(d), "read", "--from", n]),
            (f"read --stream --from {n}", lambda d, n=n: [*log(d), "read", "--stream", "s1", "--from", n]),
            (f"read --limit {n}", lambda d, n=n: [*log(d), "read", "--limit", n]),
            (f"verify --from {n}", lambda d, n=n: [*log(d), "verify", "--from", n]),
            (f"verify --to {n}", lambda d, n=n: [*log(d), "verify", "--to", n]),
            (
                f"append --expected-version {n}",
                lambda d, n=n: [
                    *log(d),
                    "append",
                    "--stream",
                    "s",
                    "--type",
                    "t",
                    "--data",
                    "{}",
                    "--expected-version",
                    n,
                ],
            ),
            (f"verify-receipt position {n}", lambda d, n=n: [*log(d), "verify-receipt", str(_receipt(d, int(n)))]),
        ]
    # the database itself: missing, empty, not a database, a directory
    readers = [
        ["verify"],
        ["read"],
        ["stats"],
        ["events", "check"],
        ["project", "status"],
        ["migrate", "status"],
        ["migrate", "plan"],
        ["prove", "inclusion", "--position", "1", "--checkpoint", "CP"],
        ["receipt", "--position", "1", "--checkpoint", "CP"],
        ["verify-receipt", "RECEIPT"],
        ["prove", "consistency", "--old", "CP", "--new", "CP"],
        ["backup", "BACKUP"],
    ]
    writers = [
        ["init"],
        ["append", "--stream", "s", "--type", "t", "--data", "{}"],
        ["checkpoint", "--key", "KEY"],
        ["erase", "--subject", "x", "--requested-by", "y"],
        ["project", "run"],
        ["migrate", "up"],
        ["migrate", "down"],
        ["maintain"],
        ["restore", "LOGDB"],
    ]
    for db in ("missing.db", "empty", "junk", "badutf8", ".", "key/signing.key"):
        for cmd in readers + writers:
            c.append((f"{db}: {' '.join(cmd[:2])}", lambda d, db=db, cmd=cmd: ["--db", str(d / db), *_fill(d, cmd)]))
    # keys: tampered, truncated, wrong kind, symlinks
    for k in ("tampered.key", "truncated.key", "badutf8", "empty", "key/verifier.pub", "wkey", "missing"):
        c.append((f"checkpoint --key {k}", lambda d, k=k: [*log(d), "checkpoint", "--key", str(d / k)]))
        c.append(
            (
                f"cosign --key {k}",
                lambda d, k=k: [
                    *log(d),
                    "cosign",
                    "--key",
                    str(d / k),
                    "--checkpoint",
                    str(d / "cp.txt"),
                    "--public-key",
                    str(d / "key/verifier.pub"),
                    "--state",
                    str(d / "wstate.json"),
                ],
            )
        )
    for k in ("tampered.pub", "allzero.pub", "key/signing.key", "wkey/verifier.pub", "badutf8"):
        c.append(
            (
                f"verify --public-key {k}",
                lambda d, k=k: [*log(d), "verify", "--checkpoint", str(d / "cp.txt"), "--public-key", str(d / k)],
            )
        )
        c.append(
            (
                f"verify --witness-key {k}",
                lambda d, k=k: [
                    *log(d),
                    "verify",
                    "--checkpoint",
                    str(d / "cp.txt"),
                    "--public-key",
                    str(d / "key/verifier.pub"),
                    "--witness-key",
                    str(d / k),
                ],
            )
        )
        c.append(
            (
                f"verify-proof --public-key {k}",
                lambda d, k=k: [
                    "verify-proof",
                    str(d / "proof.json"),
                    "--checkpoint",
                    str(d / "cp.txt"),
                    "--public-key",
                    str(d / k),
                ],
            )
        )
    c.append(("demo --db directory", lambda d: ["--db", str(d / "key"), "demo", "--agents", "1", "--sessions", "1"]))
    c.append(("bench --events too few", lambda d: ["bench", "--events", "5", "--dir", str(d)]))
    c.append(("bench --dir file", lambda d: ["bench", "--quick", "--repeat", "1", "--dir", str(d / "junk")]))
    # backup, restore: hostile files on either side
    for f in ("junk", "empty", "badutf8", "missing", ".", "key", "log.db", "missing/b.db", "x" * 300):
        c.append((f"backup {f[:40]}", lambda d, f=f: [*log(d), "backup", str(d / f)]))
        c.append((f"backup --force {f[:40]}", lambda d, f=f: [*log(d), "backup", "--force", str(d / f)]))
        c.append((f"restore {f[:40]}", lambda d, f=f: [*log(d), "restore", str(d / f)]))
        c.append(
            (f"restore --force {f[:40]}", lambda d, f=f: [*log(d), "restore", str(d / f), "--force", "--reason", "r"])
        )
    for f in ("deep.json", "badstate.json", "badutf8", "empty", "missing", "."):
        c.append((f"restore --state {f}", lambda d, f=f: [*log(d), "restore", str(_backup(d)), "--state", str(d / f)]))
    for bad in BAD_NAMES:
        c.append(("restore --reason", lambda d, b=bad: [*log(d), "restore", str(d / "junk"), "--force", "--reason", b]))
        c.append(("restore --by", lambda d, b=bad: [*log(d), "restore", str(_backup(d)), "--by", b]))
    c.append(("unknown command", lambda d: ["nosuch"]))
    c.append(("keygen into file", lambda d: ["keygen", "--name", "n", "--out", str(d / "empty")]))
    c.append(("keygen existing", lambda d: ["keygen", "--name", "n", "--out", str(d / "key")]))
    c.append(("keygen symlink", lambda d: ["keygen", "--name", "n", "--out", str(_symlinked_key_target(d))]))
    c.append(("keygen symlink dir", lambda d: ["keygen", "--name", "n", "--out", str(_symlinked_dir(d))]))
    return c


def _receipt(d: Path, position: int) -> Path:
    r = json.loads((d / "receipt.json").read_text())
    r["position"] = position
    p = d / f"receipt-{position}.json"
    p.write_text(json.dumps(r))
    return p


def _backup(d: Path) -> Path:
    shutil.copy(d / "log.db", d / "copy.db")
    return d / "copy.db"


def _fill(d: Path, cmd: list[str]) -> list[str]:
    repl = {
        "CP": str(d / "cp.txt"),
        "RECEIPT": str(d / "receipt.json"),
        "KEY": str(d / "key"),
        "BACKUP": str(d / "new-backup.db"),
        "LOGDB": str(d / "log.db"),
    }
    return [repl.get(a, a) for a in cmd]


def _symlinked_key_target(d: Path) -> Path:
    out = d / "linked"
    out.mkdir()
    (out / "verifier.pub").symlink_to(d / "victim.txt")
    return out


def _symlinked_dir(d: Path) -> Path:
    (d / "realdir").mkdir()
    (d / "linkdir").symlink_to(d / "realdir")
    return d / "linkdir"


CASES = _cases()


def _check(result: Result) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    out = result.output
    assert "Traceback" not in out
    assert result.exit_code in (0, 1, 2), out
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize("name,make_args", CASES, ids=[c[0][:60] for c in CASES])
def test_no_traceback(name: str, make_args: Callable[[Path], list[str]], template: Path, tmp_path: Path) -> None:
    d = tmp_path / "w"
    shutil.copytree(template, d, symlinks=True)
    result = CliRunner().invoke(main, make_args(d), env={"EVENTSTORE_DEBUG": "1"})
    _check(result)
