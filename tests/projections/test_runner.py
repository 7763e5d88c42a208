"""Runner behaviour operators rely on: failures stop one projection, leases, crashes, erasure, CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main
from eventstore.records import RecordedEvent
from projections import Messages, Runner, Tables, all_projections

from .helpers import append_all, dump, scenario


class Exploding(Messages):
    """A messages projection whose handler raises on one event."""

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        for e in events:
            if e.data.get("content") == "boom":
                raise ValueError("cannot handle boom")
        super().apply(events, db)


def msg(i: int, content: str = "hi") -> NewEvent:
    return NewEvent(
        type="message.appended", data={"session_id": "s", "message_id": f"m{i}", "role": "user", "content": content}
    )


def test_a_failing_handler_stops_only_its_projection(store: EventStore) -> None:
    for i, c in enumerate(["a", "b", "boom", "c"]):
        store.append("s", [msg(i, c)])
    projections = [p for p in all_projections() if p.name != "messages"] + [Exploding()]
    runner = Runner(store, projections)
    runner.run_once()
    status = {s.name: s for s in runner.status()}
    assert status["messages"].state == "failed"
    assert status["messages"].error_position == 3 and "cannot handle boom" in (status["messages"].error or "")
    assert status["messages"].checkpoint == 2
    assert store.backend.query("SELECT count(*) FROM messages")[0][0] == 2  # rows before the failure kept
    assert status["sessions"].state == "caught up" and status["sessions"].checkpoint == 4
    # a fixed handler, in a new run, resumes from the failing event
    runner.release()
    Runner(store).run_once()
    assert store.backend.query("SELECT count(*) FROM messages")[0][0] == 4


def test_leases_keep_two_workers_apart_and_expire(store: EventStore) -> None:
    store.append("s", [msg(1)])
    a = Runner(store, worker_id="a", lease_seconds=2.0)
    b = Runner(store, worker_id="b", lease_seconds=2.0)
    assert a.run_once()["messages"] == 1
    store.append("s", [msg(2)])
    assert b.run_once()["messages"] == 0  # a still holds the leases
    time.sleep(2.1)  # a dies without releasing; its lease runs out
    assert b.run_once()["messages"] == 1
    assert {s.owner for s in b.status()} == {"b"}
    store.append("s", [msg(3)])
    assert a.run_once()["messages"] == 0  # a lost its leases to b
    b.release()
    assert a.run_once()["messages"] == 1


WORKER = r"""
import sys
from eventstore import EventStore
from projections import Runner
with EventStore.open(sys.argv[1]) as store:
    Runner(store, batch_size=int(sys.argv[2]), worker_id="victim", lease_seconds=0.2).run_once()
"""


def test_a_projector_killed_mid_batch_resumes_without_loss_or_double_counting(tmp_path: Path) -> None:
    path = str(tmp_path / "k.db")
    with EventStore.open(path, durability="process") as store:
        append_all(store, scenario(random.Random(1), 3000))
    for delay in (0.3, 0.5, 0.7):
        proc = subprocess.Popen([sys.executable, "-c", WORKER, path, "50"])
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.3)  # the dead worker's leases expire
    with EventStore.open(path) as store:
        runner = Runner(store)
        runner.run_once()
        live = dump(store)
        count = store.backend.query("SELECT sum(message_count) FROM sessions")[0][0]
        ids = {(e.data["session_id"], e.data["message_id"]) for e in store.read_all() if e.type == "message.appended"}
        assert count == len(ids)  # a repeated message id counts once
        for p in runner.projections:
            runner.rebuild(p.name)
        assert dump(store) == live


def test_erasure_reaches_the_read_models_and_rebuild_agrees(sqlite_store: EventStore) -> None:
    sqlite_store.append(
        "s",
        [
            NewEvent(
                type="message.appended",
                subject="alice",
                data={"session_id": "s", "message_id": "m1", "role": "user", "content": "alice's address"},
            )
        ],
    )
    sqlite_store.append("s", [msg(2, "public")])
    runner = Runner(sqlite_store)
    runner.run_once()
    assert sqlite_store.backend.query("SELECT content FROM messages ORDER BY position") == [
        ("alice's address",),
        ("public",),
    ]
    sqlite_store.erase("alice", requested_by="dpo")
    runner.run_once()  # sees subject.erased: rebuilds the personal read models
    assert sqlite_store.backend.query("SELECT content FROM messages ORDER BY position") == [(None,), ("public",)]
    live = dump(sqlite_store)
    for p in runner.projections:
        runner.rebuild(p.name)
    assert dump(sqlite_store) == live


def test_version_bump_rebuilds(sqlite_store: EventStore) -> None:
    sqlite_store.append("s", [msg(1)])
    Runner(sqlite_store).run_once()

    class MessagesV2(Messages):
        version = Messages.version + 1

    runner = Runner(sqlite_store, [MessagesV2()])
    assert runner.status()[0].state.startswith("stale")
    runner.run_once()
    s = runner.status()[0]
    assert (s.version, s.generation, s.state) == (Messages.version + 1, 2, "caught up")
    assert sqlite_store.backend.query("SELECT count(*) FROM messages")[0][0] == 1


def test_project_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    with EventStore.open(db) as store:
        append_all(store, scenario(random.Random(2), 40))

    def run(*args: str):  # noqa: ANN202
        return CliRunner().invoke(main, ["--db", db, "project", *args])

    before = json.loads(run("status", "--json").stdout)
    assert all(s["checkpoint"] == 0 and s["lag"] == 41 for s in before)
    r = run("run")
    assert r.exit_code == 0, r.output
    after = json.loads(run("status", "--json").stdout)
    assert all(s["lag"] == 0 and s["state"] == "caught up" for s in after)
    assert "caught up" in run("status").stdout
    r = run("rebuild", "sessions")
    assert r.exit_code == 0 and "rebuilt sessions up to position 41" in r.stderr
    assert run("rebuild", "--all").exit_code == 0
    r = run("rebuild", "nope")
    assert r.exit_code == 2 and "no projection named 'nope'" in r.stderr
    assert run("rebuild").exit_code == 2


def test_follow_picks_up_new_events_until_stopped(store: EventStore) -> None:
    import threading

    runner = Runner(store)
    stop = threading.Event()
    worker = threading.Thread(target=runner.follow, args=(stop,), kwargs={"poll": 0.05})
    worker.start()
    try:
        store.append("s", [msg(1)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if store.backend.query("SELECT count(*) FROM messages")[0][0] == 1:
                break
            time.sleep(0.02)
        assert store.backend.query("SELECT count(*) FROM messages")[0][0] == 1
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
