"""The CLI as users call it (click's CliRunner): append, read, verify, receipts, stats, migrate."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore.cli import main


@pytest.fixture
def run(tmp_path: Path):
    db = str(tmp_path / "cli.db")

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        return CliRunner().invoke(main, ["--db", db, *args], input=input, env=env)

    invoke.db = db  # type: ignore[attr-defined]
    return invoke


def test_init_append_read_verify(run) -> None:
    assert run("init").exit_code == 0
    r = run("append", "--stream", "s1", "--type", "note", "--data", '{"text": "hi"}', "--metadata", '{"agent_id": "a"}')
    assert r.exit_code == 0, r.output
    receipt = json.loads(r.stdout)
    assert receipt["position"] == 1 and receipt["version"] == 1 and len(receipt["hash"]) == 64
    r = run("append", "--stream", "s1", "--type", "note", "--data", "{}", "--expected-version", "1")
    assert r.exit_code == 0
    lines = [json.loads(x) for x in run("read").stdout.splitlines()]
    assert [e["position"] for e in lines] == [1, 2]
    assert lines[0]["data"] == {"text": "hi"} and lines[0]["metadata"] == {"agent_id": "a"}
    assert [json.loads(x)["version"] for x in run("read", "--stream", "s1", "--from", "2").stdout.splitlines()] == [2]
    assert len(run("read", "--limit", "1").stdout.splitlines()) == 1
    v = run("verify")
    assert v.exit_code == 0 and "OK" in v.stdout
    report = json.loads(run("verify", "--json").stdout)
    assert report["ok"] is True and report["checked"] == 2


def test_db_from_environment(tmp_path: Path) -> None:
    db = str(tmp_path / "env.db")
    r = CliRunner().invoke(main, ["append", "--stream", "s", "--type", "t", "--data", "{}"], env={"EVENTSTORE_DB": db})
    assert r.exit_code == 0 and Path(db).exists()


def test_user_errors_are_one_line_exit_2_and_write_nothing(run) -> None:
    run("init")
    cases = [
        (["append", "--stream", "s", "--type", "t", "--data", "{oops"], "--data is not valid JSON"),
        (["append", "--stream", "s", "--type", "t", "--data", "[1]"], "--data must be a JSON object"),
        (["append", "--stream", "", "--type", "t", "--data", "{}"], "stream id must not be empty"),
        (["append", "--stream", "s", "--type", "t"], "missing --data"),
        (["append", "--stream", "s", "--type", "message.appended", "--data", '{"session_id": "x"}'], "$.data"),
        (
            ["append", "--stream", "s", "--type", "t", "--data", "{}", "--expected-version", "3"],
            "wrong expected version for stream 's': expected 3, actual 0",
        ),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert run("read").stdout == ""


def test_append_jsonl_prints_one_receipt_per_event(run, tmp_path: Path) -> None:
    lines = [
        {"stream": "a", "type": "t", "data": {"i": 1}},
        {"stream": "b", "type": "t", "data": {"i": 2}, "metadata": {"agent_id": "x"}, "expected_version": 0},
        {"stream": "a", "type": "t", "data": {"i": 3}, "expected_version": 1},
    ]
    r = run("append", "--jsonl", "-", input="\n".join(json.dumps(x) for x in lines) + "\n")
    assert r.exit_code == 0, r.output
    receipts = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["stream_id"], x["version"], x["position"]) for x in receipts] == [("a", 1, 1), ("b", 1, 2), ("a", 2, 3)]
    f = tmp_path / "more.jsonl"
    f.write_text(json.dumps({"stream": "c", "type": "t", "data": {}}) + "\n")
    assert run("append", "--jsonl", str(f)).exit_code == 0


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"stream": "a", "type": "t", "data": {}, "colour": "red"}', "line 2: Object contains unknown field `colour`"),
        ('{"stream": "a", "type": "t"}', "line 2: Object missing required field `data`"),
        ('{"stream": "a", "type": "t", "data": {"n": "x"}, "expected_version": "1"}', "line 2: Expected `int | null`"),
        ('{"stream": "a", "type": "t", "data": {"x": 1e999}}', "line 2"),
        ("not json", "line 2: not valid JSON"),
        ('{"stream": "", "type": "t", "data": {}}', "line 2"),
        (
            '{"stream": "a", "type": "tool.finished", "data": {"session_id": "s", "execution_id": "e", "status": "ok"}}',
            "line 2: invalid 'tool.finished' event: Invalid enum value 'ok' - at `$.data.status`",
        ),
    ],
)
def test_bad_jsonl_names_the_line_and_writes_nothing(run, bad_line: str, message: str) -> None:
    good = json.dumps({"stream": "a", "type": "t", "data": {}})
    r = run("append", "--jsonl", "-", input=f"{good}\n{bad_line}\n{good}\n")
    assert r.exit_code == 2
    assert message in r.stderr, r.stderr
    assert run("read").stdout == ""


def test_jsonl_conflict_names_the_line(run) -> None:
    lines = [
        json.dumps({"stream": "a", "type": "t", "data": {}}),
        json.dumps({"stream": "a", "type": "t", "data": {}, "expected_version": 0}),
    ]
    r = run("append", "--jsonl", "-", input="\n".join(lines))
    assert r.exit_code == 2 and "line 2: wrong expected version" in r.stderr and "nothing was written" in r.stderr
    assert run("read").stdout == ""


def test_verify_names_the_first_bad_position(run) -> None:
    for i in range(5):
        run("append", "--stream", "s", "--type", "t", "--data", json.dumps({"i": i}))
    conn = sqlite3.connect(run.db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET data = CAST('{\"i\":99}' AS BLOB) WHERE position = 3")
    conn.commit()
    conn.close()
    r = run("verify")
    assert r.exit_code == 1 and "position 3" in r.stdout and "payload was changed" in r.stdout
    report = json.loads(run("verify", "--json").stdout)
    assert report["problem"]["position"] == 3 and report["problem"]["kind"] == "data_digest"
    assert run("verify", "--to", "2").exit_code == 0
    assert run("verify", "--from", "4").exit_code == 0


def test_verify_receipt(run, tmp_path: Path) -> None:
    out = run("append", "--stream", "s", "--type", "t", "--data", "{}").stdout
    run("append", "--stream", "s", "--type", "t", "--data", "{}")
    f = tmp_path / "r.json"
    f.write_text(out)
    assert run("verify-receipt", str(f)).exit_code == 0
    forged = json.loads(out)
    forged["hash"] = "ab" * 32
    f.write_text(json.dumps(forged))
    r = run("verify-receipt", str(f))
    assert r.exit_code == 1 and "FAILED" in r.stdout
    f.write_text("{}")
    r = run("verify-receipt", str(f))
    assert r.exit_code == 2 and "not a receipt" in r.stderr


def test_stats_and_migrate(run) -> None:
    run("append", "--stream", "s", "--type", "t", "--data", "{}")
    s = json.loads(run("stats", "--json").stdout)
    assert s["events"] == 1 and s["streams"] == 1 and s["types"] == {"t": 1} and s["schema_version"] >= 1
    assert "events" in run("stats").stdout
    status = run("migrate", "status").stdout
    assert "0001_events  applied" in status
    assert run("migrate", "plan").exit_code == 0
    assert run("migrate", "up").exit_code == 0


def test_reading_a_missing_database_is_a_user_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["--db", str(tmp_path / "nope.db"), "verify"])
    assert r.exit_code == 2 and "eventstore init" in r.stderr


def _line(stream: str, **extra: object) -> str:
    return json.dumps({"stream": stream, "type": "t", "data": {}, **extra})


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_line("a\x00b"), "line 1500: stream must not contain a NUL character"),
        (_line("a\ud800"), "line 1500: not valid JSON"),  # msgspec refuses a lone surrogate escape
        (json.dumps({"stream": "a", "type": "t\x00", "data": {}}), "line 1500: event 0: type must not contain a NUL"),
        (_line("a", expected_version=-1), "line 1500: at $.expected_version: expected_version must be >= 0"),
    ],
)
def test_jsonl_validates_every_line_before_the_first_batch_is_written(
    run, tmp_path: Path, bad: str, message: str
) -> None:
    lines = [_line(f"s{i % 7}") for i in range(1499)] + [bad]
    f = tmp_path / "in.jsonl"  # a FILE is validated whole; standard input is a stream (below)
    f.write_text("\n".join(lines) + "\n")
    r = run("append", "--jsonl", str(f))
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.output
    assert r.stdout == ""
    assert run("read").stdout == ""


def test_jsonl_that_is_not_utf8_names_the_line(run, tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_bytes(_line("a").encode() + b"\n" + b'{"stream": "\xff"}\n')
    r = run("append", "--jsonl", str(f))
    assert r.exit_code == 2 and "not UTF-8" in r.stderr and run("read").stdout == ""


@pytest.mark.parametrize("stdin", [False, True])
def test_jsonl_conflict_in_a_later_batch_says_exactly_which_lines_were_written(
    run, tmp_path: Path, stdin: bool
) -> None:
    lines = [_line("a") for _ in range(1200)] + [_line("b", expected_version=0), _line("b", expected_version=0)]
    if stdin:
        r = run("append", "--jsonl", "-", input="\n".join(lines))
    else:
        (tmp_path / "in.jsonl").write_text("\n".join(lines))
        r = run("append", "--jsonl", str(tmp_path / "in.jsonl"))
    assert r.exit_code == 2
    assert "line 1202: wrong expected version for stream 'b': expected 0, actual 1" in r.stderr
    # a file was read whole, so its last line is known; standard input stops where it failed
    rest = "line 1001 and later were not" if stdin else "lines 1001-1202 were not"
    assert "lines 1-1000 were appended" in r.stderr and rest in r.stderr
    assert len(r.stdout.splitlines()) == 1000  # exactly the receipts of what was written
    assert len(run("read").stdout.splitlines()) == 1000
