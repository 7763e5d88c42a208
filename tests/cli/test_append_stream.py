"""``append --jsonl``: the API's event fields, and standard input appended as lines arrive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore import EventStore
from eventstore.cli import main

EVENTSTORE = [sys.executable, "-c", "from eventstore.cli import main; main()"]


def test_jsonl_accepts_subject_personal_and_id_like_the_api(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    line = {
        "stream": "s",
        "type": "note",
        "data": {"text": "secret", "n": 1},
        "subject": "user-1",
        "personal": ["text"],
        "id": "evt-1",
    }
    text = json.dumps(line) + "\n"
    answers = []
    for _ in range(2):  # the second run is a retry: same id
        r = CliRunner().invoke(main, ["--db", db, "append", "--jsonl", "-"], input=text)
        assert r.exit_code == 0, r.output
        answers.append(json.loads(r.stdout))
    assert answers[0] == answers[1]  # the retry wrote nothing and answered the original receipt
    with EventStore.open(db) as store:
        (ev,) = list(store.read_all())
        assert ev.position == 1 and ev.data["text"] == "secret"
        store.erase("user-1", requested_by="dpo")
        assert next(store.read_stream("s")).data["text"] is None  # encrypted under the subject's key
    bad = json.dumps(line | {"subject": ""})
    r = CliRunner().invoke(main, ["--db", db, "append", "--jsonl", "-"], input=bad + "\n")
    assert r.exit_code == 2 and "line 1" in r.stderr


def _wait_for_events(db: str, n: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(db):
            try:
                with EventStore.open(db, readonly=True) as store:
                    head = store.head()[0]
                if head >= n:
                    return head
            except Exception:
                pass
        time.sleep(0.05)
    return -1


@pytest.mark.slow
def test_stdin_lines_are_appended_as_they_arrive_not_at_end_of_input(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    EventStore.open(db).close()
    proc = subprocess.Popen(
        [*EVENTSTORE, "--db", db, "append", "--jsonl", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"EVENTSTORE_DEBUG": "1"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps({"stream": "live", "type": "note", "data": {"i": 1}}).encode() + b"\n")
        proc.stdin.flush()
        assert _wait_for_events(db, 1) == 1, "the first line was not appended while standard input stayed open"
        assert json.loads(proc.stdout.readline())["position"] == 1  # its receipt, flushed at once
        assert proc.poll() is None  # still reading
        proc.stdin.write(json.dumps({"stream": "live", "type": "note", "data": {"i": 2}}).encode() + b"\n")
        proc.stdin.flush()
        assert _wait_for_events(db, 2) == 2
        proc.stdin.write(b'{"stream": "live", "type": "", "data": {}}\n')  # a bad line stops the stream
        proc.stdin.close()
        assert proc.wait(timeout=30) == 2
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert "line 3" in err and "lines 1-2 were appended" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
