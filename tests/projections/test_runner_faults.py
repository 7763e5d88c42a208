"""Projector fault points: crashes between rows and checkpoint, checkpoints that differ, lease
fencing, a checkpoint past the head, unreadable events, and a stalled worker on SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main
from eventstore.records import RecordedEvent
from projections import Messages, Runner, Sessions, Tables, all_projections
from projections.runner import LeaseLost

from .helpers import dump


def msg(i: int, session: str = "s") -> NewEvent:
    return NewEvent(
        type="message.appended",
        data={"session_id": session, "message_id": f"m{i}", "role": "user", "content": f"hi {i}"},
    )


def start(session: str) -> NewEvent:
    return NewEvent(type="session.started", data={"session_id": session, "model": "m"})


def counts(store: EventStore) -> tuple[int, int]:
    """(messages rows, sum of sessions.message_count): equal iff no message was applied twice or skipped."""
    q = store.backend.query
    return q("SELECT count(*) FROM messages")[0][0], q("SELECT coalesce(sum(message_count), 0) FROM sessions")[0][0]


def fill(store: EventStore, n: int, first: int = 0) -> None:
    if first == 0:
        store.append("session-s", [start("s")])
    for i in range(first, first + n):
        store.append("session-s", [msg(i)])


class Crash(Exception):
    pass


def test_a_crash_between_rows_and_checkpoint_neither_skips_nor_double_applies(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, 30)
    runner = Runner(store, batch_size=10)
    real = Runner._checkpoint
    calls = {"n": 0}

    def crash_on_seventh(self: Runner, tx: Any, *args: Any, **kw: Any) -> bool:
        calls["n"] += 1
        # One call per projection per batch: this is the second batch's second projection, after
        # the rows of the batch were written and the first projection's checkpoint was moved.
        if calls["n"] == len(runner.projections) + 2:
            raise Crash("killed between rows and checkpoint")
        return real(self, tx, *args, **kw)

    monkeypatch.setattr(Runner, "_checkpoint", crash_on_seventh)
    with pytest.raises(Crash):
        runner.run_once()
    monkeypatch.setattr(Runner, "_checkpoint", real)
    positions = {s.name: s.checkpoint for s in runner.status()}
    assert set(positions.values()) == {10}  # first batch only: all of the second rolled back
    runner.run_once()  # the same worker retries, from the checkpoints
    assert counts(store) == (30, 30)
    live = dump(store)
    Runner(store).rebuild_many([p.name for p in all_projections()])
    assert dump(store) == live


KILLER = r"""
import os, sys
from eventstore import EventStore
from projections import Runner
real = Runner._checkpoint
calls = [0]
def die(self, *a, **k):
    calls[0] += 1
    if calls[0] == int(sys.argv[2]):
        os._exit(9)  # like SIGKILL: no rollback, no cleanup
    return real(self, *a, **k)
Runner._checkpoint = die
with EventStore.open(sys.argv[1]) as store:
    Runner(store, batch_size=7, worker_id="victim", lease_seconds=0.3).run_once()
"""


@pytest.mark.slow
def test_a_process_killed_between_rows_and_checkpoint_resumes_exactly(backend_url: str) -> None:
    with EventStore.open(backend_url) as store:
        fill(store, 40)
    for n in (3, 8, 14):  # different checkpoint updates: first projection of a batch, or a later one
        r = subprocess.run(check=False, args=[sys.executable, "-c", KILLER, backend_url, str(n)], timeout=120)
        assert r.returncode == 9
        time.sleep(0.35)  # the victim's leases expire
    with EventStore.open(backend_url) as store:
        Runner(store).run_once()
        assert counts(store) == (40, 40)
        live = dump(store)
        Runner(store).rebuild_many([p.name for p in all_projections()])
        assert dump(store) == live


def test_projections_at_different_checkpoints_share_a_batch_without_double_counting(store: EventStore) -> None:
    fill(store, 5)
    first = Runner(store, [Sessions()])
    first.run_once()  # sessions at 6, messages at 0
    first.release()
    fill(store, 4, first=5)
    runner = Runner(store, [Sessions(), Messages()])
    applied = runner.run_once()  # one read from position 1 serves both
    assert applied == {"sessions": 4, "messages": 9}
    assert counts(store) == (9, 9)
    assert {s.name: s.checkpoint for s in runner.status()} == {"sessions": 10, "messages": 10}


def test_a_worker_that_lost_its_lease_cannot_commit_a_stale_batch(store: EventStore) -> None:
    fill(store, 3)
    a = Runner(store, [Sessions()], worker_id="a", lease_seconds=0.2)
    b = Runner(store, [Sessions()], worker_id="b", lease_seconds=30)
    generation = a._active("sessions")[0]
    assert a._lease("sessions", generation)
    events = list(store.read_all())
    time.sleep(0.25)  # a pauses; its lease runs out and b takes over
    assert b._lease("sessions", generation)
    with pytest.raises(LeaseLost):
        a._apply_batch([(a.by_name["sessions"], generation, 0)], events)
    assert store.backend.query("SELECT count(*) FROM sessions")[0][0] == 0  # nothing of a's batch
    assert a.status()[0].checkpoint == 0
    b.run_once()
    assert store.backend.query("SELECT message_count FROM sessions") == [(3,)]


def test_a_checkpoint_past_the_head_is_reported_and_never_resumed_silently(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    with EventStore.open(db) as store:
        fill(store, 3)
        first = Runner(store)
        first.run_once()
        first.release()
        # The log is restored from an older backup: the read models are at 4, the log at 2.
        with store.backend.transaction() as tx:
            tx.execute("UPDATE projection_state SET position = 10 WHERE name = 'messages'")
        status = {s.name: s for s in Runner(store).status()}
        assert status["messages"].state == "ahead of log" and not status["messages"].ok
        assert status["sessions"].state == "caught up" and status["sessions"].ok
        fill(store, 8, first=3)  # the log grows past the checkpoint: still not resumed
        runner = Runner(store)
        applied = runner.run_once()
        assert applied["messages"] == 0 and applied["sessions"] == 8
        runner.release()
        s = {s.name: s for s in runner.status()}["messages"]
        assert s.state == "ahead of log" and "project rebuild messages" in (s.error or "")
    r = CliRunner().invoke(main, ["--db", db, "project", "status", "--json"])
    assert r.exit_code == 1
    assert {x["name"]: x["state"] for x in json.loads(r.stdout)}["messages"] == "ahead of log"
    r = CliRunner().invoke(main, ["--db", db, "project", "run"])
    assert r.exit_code == 1 and "messages stopped at position 10" in r.stderr
    assert CliRunner().invoke(main, ["--db", db, "project", "rebuild", "messages"]).exit_code == 0
    r = CliRunner().invoke(main, ["--db", db, "project", "status"])
    assert r.exit_code == 0 and "ahead" not in r.stdout


class Exploding(Messages):
    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        if any(e.data.get("content") == "hi 1" for e in events):
            raise ValueError("boom")
        super().apply(events, db)


def test_project_status_exit_code(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    with EventStore.open(db) as store:
        fill(store, 3)
        assert CliRunner().invoke(main, ["--db", db, "project", "status"]).exit_code == 0  # behind is fine
        Runner(store, [p for p in all_projections() if p.name != "messages"] + [Exploding()]).run_once()
    r = CliRunner().invoke(main, ["--db", db, "project", "status"])
    assert r.exit_code == 1 and "failed" in r.stdout


class Unreadable:
    """A RecordedEvent whose stored payload could not be decoded (the ``unreadable`` field)."""

    def __init__(self, e: RecordedEvent):
        self._e = e
        self.unreadable = "payload is not valid JSON"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._e, name)


def test_an_unreadable_event_fails_only_the_projections_that_read_its_type(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, 4)  # positions: 1 session.started, 2..5 messages
    real = EventStore.read_all

    def read_all(self: EventStore, *args: Any, **kw: Any):
        for e in real(self, *args, **kw):
            yield Unreadable(e) if e.position == 3 else e

    monkeypatch.setattr(EventStore, "read_all", read_all)
    runner = Runner(store)
    runner.run_once()
    status = {s.name: s for s in runner.status()}
    for name in ("messages", "sessions"):  # both read message.appended
        assert status[name].state == "failed" and status[name].error_position == 3
        assert status[name].checkpoint == 2 and "cannot be read: payload is not valid JSON" in status[name].error
    assert status["metrics"].state == "caught up" and status["metrics"].checkpoint == 5
    assert store.backend.query("SELECT count(*) FROM messages")[0][0] == 1  # the event before it is kept


class Stalling(Messages):
    """A handler that stalls (a hung network call, a debugger) until released."""

    def __init__(self, entered: threading.Event, release: threading.Event):
        self.entered, self.release = entered, release

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        super().apply(events, db)  # rows written: this transaction holds SQLite's write lock
        self.entered.set()
        self.release.wait(20)


APPENDER = r"""
import sys, time
from eventstore import EventStore, NewEvent
with EventStore.open(sys.argv[1], busy_timeout=float(sys.argv[2])) as store:
    t = time.monotonic()
    store.append("other", [NewEvent(type="note", data={})])
    print(round(time.monotonic() - t, 2))
"""


@pytest.mark.slow
def test_a_stalled_projector_on_sqlite_costs_a_bounded_wait_not_an_outage(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        fill(store, 3)
        entered, release = threading.Event(), threading.Event()
        stalled = Runner(
            store, [Stalling(entered, release)], worker_id="stalled", lease_seconds=2.0, max_transaction_seconds=1.0
        )
        worker = threading.Thread(target=stalled.run_once)
        worker.start()
        try:
            assert entered.wait(10)
            # Another process appends: it waits for the write lock at most ~max_transaction_seconds.
            r = subprocess.run(
                check=False,
                args=[sys.executable, "-c", APPENDER, sqlite_url, "10"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 0, r.stderr
            assert float(r.stdout) < 5
            # The other worker neither dies nor waits forever: it takes over once the lease ends.
            time.sleep(2.1)
            other = Runner(store, [Messages()], worker_id="other")
            assert other.run_once()["messages"] == 3
        finally:
            release.set()
            worker.join(30)
        assert not worker.is_alive()
        assert store.backend.query("SELECT count(*) FROM messages")[0][0] == 3  # the stalled batch rolled back
        assert {s.owner for s in other.status()} == {"other"}


def test_a_busy_database_is_not_fatal_for_the_other_worker(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url, busy_timeout=0.2) as store:
        fill(store, 2)
        runner = Runner(store, [Messages()])
        blocker = __import__("sqlite3").connect(sqlite_url, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # e.g. a worker stopped (SIGSTOP) inside its transaction
        try:
            assert runner.run_once() == {"messages": 0}  # no traceback: nothing leased this round
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert runner.run_once() == {"messages": 2}


def test_leases_and_pickling_of_lease_lost() -> None:
    import pickle

    assert str(pickle.loads(pickle.dumps(LeaseLost("x")))) == "x"


def test_follow_outlives_a_database_outage_mid_batch(sqlite_store: EventStore) -> None:
    """A BackendError in a batch (PostgreSQL restarting) is retried with backoff, not fatal."""
    import threading

    from eventstore.errors import BackendError
    from projections import Runner

    sqlite_store.append("s", [NewEvent(type="session.started", data={"session_id": "1"})])
    runner = Runner(sqlite_store)
    real = runner.run_once
    failures = [BackendError("cannot reach PostgreSQL at db:5432/audit (tried for 5 s)")] * 2
    stop = threading.Event()

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        applied = real(*args, **kwargs)
        stop.set()
        return applied

    runner.run_once = flaky  # type: ignore[method-assign]
    thread = threading.Thread(target=runner.follow, args=(stop,), kwargs={"poll": 0.05, "max_backoff": 0.1})
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and not failures
    assert sqlite_store.backend.query("SELECT count(*) FROM sessions")[0][0] == 1
