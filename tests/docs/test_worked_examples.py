"""The worked examples in the docs, run as written: every `$ eventstore ...` line and its output.

A console block is a list of commands (`$ ...`, continued with a trailing backslash) each
followed by the lines it prints. Expected output matches line by line, where `…`, `...` and
`<anything>` stand for any text. Supported shell: `eventstore ARGS [> FILE] [&& echo TEXT]`,
`cat FILE`, `printf '%s\\n' LINE... | eventstore ...`, and `# comment` lines, which run a
named step of the test (for example, agents appending more events).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs"
WILDCARD = re.compile(r"…|\\\.\\\.\\\.|<[^>]*>")


def console_block(doc: str, heading: str, index: int = 0) -> list[tuple[str, list[str]]]:
    """The ``index``-th console block after ``heading``: [(command, expected output lines)]."""
    text = (DOCS / doc).read_text()
    section = text[text.index(heading) :]
    block = section.split("```console\n")[index + 1].split("\n```")[0]
    steps: list[tuple[str, list[str]]] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            pending += " " + line.strip()
        elif line.startswith("$ "):
            pending = line[2:]
        else:
            steps[-1][1].append(line)
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        steps.append((pending, []))
        pending = ""
    return steps


def _matches(expected: str, actual: str) -> bool:
    pattern = WILDCARD.sub(".*", re.escape(expected))
    return re.fullmatch(pattern, actual) is not None


def run_session(steps: list[tuple[str, list[str]]], cwd: Path, hooks: dict[str, Callable[[], None]]) -> None:
    runner = CliRunner()
    for command, expected in steps:
        if command.startswith("#"):
            hooks[command.strip("# .")]()
            continue
        stdin = None
        if " | " in command:
            feeder, command = command.split(" | ", 1)
            words = shlex.split(feeder)
            assert words[:2] == ["printf", "%s\\n"], feeder
            stdin = "".join(w + "\n" for w in words[2:])
        echo = None
        if " && echo " in command:
            command, echo = command.split(" && echo ", 1)
        words = shlex.split(command)
        out_file = None
        if ">" in words:
            i = words.index(">")
            out_file, words = words[i + 1], words[:i]
        if words[0] == "cat":
            output = (cwd / words[1]).read_text()
            code = 0
        else:
            assert words[0] == "eventstore", command
            result = runner.invoke(main, words[1:], input=stdin, prog_name="eventstore")
            assert result.exception is None or isinstance(result.exception, SystemExit), (command, result.output)
            code = result.exit_code
            output = result.stdout
            if out_file is not None:
                (cwd / out_file).write_text(result.stdout)
                output = ""
            output += result.stderr
        if echo is not None and code == 0:
            output += echo + "\n"
        actual = output.splitlines()
        assert len(actual) == len(expected) and all(map(_matches, expected, actual)), (
            f"$ {command}\nexpected:\n" + "\n".join(expected) + "\nactual:\n" + "\n".join(actual)
        )


def _messages(db: str, start: int, n: int) -> None:
    with EventStore.open(db) as store:
        for i in range(start, start + n):
            session = f"agent{i // 200}-s{(i // 20) % 10}"
            store.append(
                f"session-{session}",
                [
                    NewEvent(
                        type="message.appended",
                        data={"session_id": session, "message_id": f"m{i}", "role": "user", "content": f"message {i}"},
                    )
                ],
            )


def test_the_auditors_worked_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/audit.md, "A worked session": checkpoints, proofs, a receipt, and the caught rollback."""
    monkeypatch.chdir(tmp_path)
    _messages("eventstore.db", 0, 345)
    steps = console_block("audit.md", "## A worked session")
    run_session(
        steps,
        tmp_path,
        {
            "agents append more": lambda: _messages("eventstore.db", 345, 55),
            "someone hands the auditor the older checkpoint again: a rollback": lambda: None,
        },
    )


def test_the_cli_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/cli.md, "Examples"."""
    monkeypatch.chdir(tmp_path)
    run_session(console_block("cli.md", "## Examples"), tmp_path, {})


def test_the_catalogue_refusal_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/events.md: a wrong field is refused with the exact path."""
    monkeypatch.chdir(tmp_path)
    run_session(console_block("events.md", "A wrong field is refused"), tmp_path, {})
