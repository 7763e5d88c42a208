"""Retention: policies and the floor, prune keeping every proof valid, the append-only guard
allowing only a pruned payload, prune beside appends and after a crash (docs/operations.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventStore, NewEvent, retention
from eventstore import holds as holds_
from eventstore.audit import archive as archives
from eventstore.audit import notes
from eventstore.audit.proofs import check_proof_text
from eventstore.cli import main
from eventstore.errors import EventStoreError, RetentionFloorError, UserError

LATER = datetime.now(UTC) + timedelta(days=10_000)
"""A ``now`` far enough ahead that every event of a test is past any short policy."""


@pytest.fixture(autouse=True)
def _clock_far_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let these tests prune as of ``LATER``: a real prune refuses a ``now`` later than the clock."""
    monkeypatch.setattr(retention, "_latest_now", lambda: datetime(3000, 1, 1, tzinfo=UTC))


def _events(store: EventStore, stream: str, n: int) -> None:
    store.append(stream, [NewEvent(type="note", data={"i": i, "text": "x" * 20}) for i in range(n)])


def _types(store: EventStore, type_: str) -> list[dict[str, Any]]:
    return [e.data for e in store.read_all() if e.type == type_]


# -- policies and the floor ----------------------------------------------------------------


def test_a_policy_shorter_than_the_floor_is_refused_and_writes_nothing(store: EventStore) -> None:
    _events(store, "agent-1", 2)
    head = store.head()
    with pytest.raises(RetentionFloorError, match=r"30d .* shorter than the minimum retention floor 183d"):
        retention.set_policy(store, streams="agent-*", keep="30d", by="ops")
    assert store.head() == head
    assert retention.policies(store) == []
    p = retention.set_policy(store, streams="agent-*", keep="183d", by="ops")  # the default floor itself is fine
    assert p.keep_seconds == 183 * 86400


@pytest.mark.parametrize("bad", ["", "30", "30y", "-1d", "1.5d", "d"])
def test_bad_durations_are_refused(sqlite_store: EventStore, bad: str) -> None:
    with pytest.raises(UserError, match="bad duration"):
        retention.set_policy(sqlite_store, type="note", keep=bad, by="ops")
    with pytest.raises(UserError, match="bad duration"):
        retention.set_floor(sqlite_store, bad, by="ops")
    assert sqlite_store.head()[0] == 0


def test_every_change_of_policy_and_floor_is_an_event_naming_who(store: EventStore) -> None:
    retention.set_floor(store, "0s", by="alice")
    retention.set_policy(store, type="tool.finished", keep="30d", by="bob")
    retention.set_policy(store, type="tool.finished", keep="12h", by="carol")
    retention.remove_policy(store, type="tool.finished", by="dave")
    events = [e for e in store.read_stream("retention")]
    assert [e.type for e in events] == [
        "retention.floor_set",
        "retention.policy_set",
        "retention.policy_set",
        "retention.policy_removed",
    ]
    assert [e.data["by"] for e in events] == ["alice", "bob", "carol", "dave"]
    assert events[0].data["previous_floor"] == "183d" and events[0].data["floor_seconds"] == 0
    assert events[2].data["previous_keep"] == "30d" and events[2].data["keep"] == "12h"
    assert retention.policies(store) == [] and retention.floor_seconds(store) == 0
    with pytest.raises(UserError, match="no retention policy"):
        retention.remove_policy(store, type="tool.finished", by="dave")


# -- prune ----------------------------------------------------------------------------------


def test_prune_removes_payloads_past_policy_and_every_proof_still_verifies(store: EventStore) -> None:
    log = notes.Signer.generate("example.org/retention")
    _events(store, "agent-1", 5)
    _events(store, "keep-me", 3)
    receipts = store.append("agent-2", [NewEvent(type="note", data={"secret": "s"}, metadata={"m": 1})])
    cp = store.checkpoint(log)
    tlog = store.tlog_proof(receipts[0].position, cp)
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="agent-*", keep="1d", by="ops")
    assert retention.prune(store, by="ops").count == 0  # nothing is a day old yet
    report = retention.prune(store, now=LATER, by="ops")
    assert (report.count, report.from_position, report.to_position) == (6, 1, 9)
    assert report.policies == {"streams:agent-*": 6}

    pruned = {e.position: e for e in store.read_all() if e.pruned}
    assert sorted(pruned) == [1, 2, 3, 4, 5, 9]
    assert all(e.data is None for e in pruned.values())
    assert pruned[9].metadata == {"m": 1}  # metadata stays
    assert all(e.data is not None for e in store.read_stream("keep-me"))
    assert store.verify().ok
    assert store.check_events().ok
    assert store.verify_receipt(receipts[0]).ok
    assert store.verify_checkpoint(cp).ok
    if store.backend.dialect == "sqlite":  # the auditor's own verifier, written from docs/format.md
        standalone = Path(__file__).resolve().parents[1] / "docs" / "verify_standalone.py"
        done = subprocess.run([sys.executable, str(standalone), store.url], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert check_proof_text(tlog, [], log.verifier).ok
    cp2 = store.checkpoint(log)
    proof = store.prove_consistency(cp.checkpoint.size, cp2.checkpoint.size)
    assert check_proof_text(msgspec.json.encode(proof).decode(), [cp.format(), cp2.format()], log.verifier).ok

    (record,) = _types(store, "retention.pruned")
    assert record == {
        "from_position": 1,
        "to_position": 9,
        "count": 6,
        "policies": {"streams:agent-*": 6},
        "by": "ops",
        "held": 0,
        "now": retention._ts(LATER),
    }
    again = retention.prune(store, now=LATER, by="ops")  # idempotent: nothing left, nothing recorded
    assert again.count == 0 and again.event_position is None
    assert len(_types(store, "retention.pruned")) == 1


def test_dry_run_counts_and_writes_nothing(store: EventStore) -> None:
    _events(store, "a", 4)
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, type="note", keep="0s", by="ops")
    head = store.head()
    report = retention.prune(store, now=LATER, dry_run=True)
    assert report.count == 4 and report.dry_run
    assert store.head() == head and not any(e.pruned for e in store.read_all())


def test_the_longest_matching_policy_wins_and_the_floor_lengthens_short_policies(sqlite_store: EventStore) -> None:
    store = sqlite_store
    _events(store, "agent-1", 2)
    recorded = datetime.fromisoformat(next(store.read_all()).recorded_at.replace("Z", "+00:00"))
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="agent-*", keep="1d", by="ops")
    retention.set_policy(store, type="note", keep="10d", by="ops")
    assert retention.prune(store, now=recorded + timedelta(days=5), dry_run=True).count == 0
    assert retention.prune(store, now=recorded + timedelta(days=11), dry_run=True).count == 2
    retention.remove_policy(store, type="note", by="ops")
    retention.set_floor(store, "20d", by="ops")  # raised above the 1d policy: events kept 20 days
    assert retention.prune(store, now=recorded + timedelta(days=11), dry_run=True).count == 0
    assert retention.prune(store, now=recorded + timedelta(days=21), dry_run=True).count == 2


def test_extreme_durations_and_times_without_a_zone(sqlite_store: EventStore) -> None:
    store = sqlite_store
    _events(store, "a", 1)
    retention.set_policy(store, type="note", keep="999999999w", by="ops")  # longer than any calendar
    assert retention.prune(store, now=LATER).count == 0
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, type="note", keep="0s", by="ops")
    recorded = next(store.read_all()).recorded_at
    assert retention.prune(store, now=recorded[:-1], dry_run=True).count == 0  # UTC, not local time
    assert retention.prune(store, now="2999-01-01T00:00:00", dry_run=True).count == 1


def test_system_events_are_never_pruned(sqlite_store: EventStore) -> None:
    store = sqlite_store
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="*", keep="0s", by="ops")
    holds_.place(store, streams="nothing", reason="r", by="ops")
    _events(store, "a", 1)
    assert retention.prune(store, now=LATER).count == 1
    assert [e.type for e in store.read_all() if e.pruned] == ["note"]


def test_through_prunes_up_to_a_position_whatever_the_policy_but_not_held_events(store: EventStore) -> None:
    _events(store, "a", 3)
    _events(store, "held", 2)
    _events(store, "a", 2)
    holds_.place(store, streams="held", reason="case 7", by="ops")
    report = retention.prune(store, through=6, reason="archived in a.tar", by="ops")  # no policy at all
    assert report.count == 4 and report.held == 2 and report.policies == {"through:6": 4}
    assert [e.position for e in store.read_all() if e.pruned] == [1, 2, 3, 6]
    (record,) = _types(store, "retention.pruned")
    assert record["through"] == 6 and record["reason"] == "archived in a.tar"
    assert store.verify().ok


def test_rebuilt_read_models_skip_pruned_events(sqlite_store: EventStore) -> None:
    from projections import Runner

    store = sqlite_store
    store.append("agent-1", [NewEvent(type="session.started", data={"session_id": "s1", "model": "m"})])
    store.append(
        "agent-1",
        [
            NewEvent(
                type="message.appended", data={"session_id": "s1", "message_id": "m1", "role": "user", "content": "hi"}
            )
        ],
    )
    store.append("agent-2", [NewEvent(type="session.started", data={"session_id": "s2", "model": "m"})])
    runner = Runner(store)
    runner.run_once()
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="agent-1", keep="0s", by="ops")
    assert retention.prune(store, now=LATER).count == 2
    for name in ("sessions", "messages"):
        runner.rebuild(name)
    runner.run_once()
    assert [r[0] for r in store.backend.query("SELECT session_id FROM sessions ORDER BY session_id")] == ["s2"]
    assert store.backend.query("SELECT count(*) FROM messages") == [(0,)]
    assert all(s.state != "failed" for s in runner.status())


# -- the append-only guard ------------------------------------------------------------------

_CHANGES = {
    "position": "position = position + 1000",
    "stream_id": "stream_id = 'other'",
    "version": "version = version + 1000",
    "type": "type = 'other'",
    "data": "data = metadata",
    "metadata": "metadata = data",
    "data_digest": "data_digest = hash",
    "metadata_digest": "metadata_digest = hash",
    "recorded_at": "recorded_at = '2000-01-01T00:00:00.000000Z'",
    "prev_hash": "prev_hash = hash",
    "hash": "hash = prev_hash",
    "event_id": "event_id = 'other'",
    "metadata NULL": "metadata = NULL",
    "data NULL and metadata NULL": "data = NULL, metadata = NULL",
    "data NULL and type": "data = NULL, type = 'other'",
    "data NULL and hash": "data = NULL, hash = prev_hash",
}


def _guarded_store(store: EventStore) -> None:
    store.append("a", [NewEvent(type="note", data={"x": 1}, metadata={"y": 2}, id="e1")])
    store.append("a", [NewEvent(type="note", data={"x": 2}, metadata={"y": 3}, id="e2")])


@pytest.mark.parametrize("change", sorted(_CHANGES))
def test_the_guard_refuses_every_update_but_pruning(store: EventStore, change: str) -> None:
    _guarded_store(store)
    before = list(store.iter_rows())
    with pytest.raises(EventStoreError, match="append-only"):
        with store.backend.transaction() as tx:
            tx.execute(f"UPDATE events SET {_CHANGES[change]} WHERE position = 2")
    assert list(store.iter_rows()) == before
    with pytest.raises(EventStoreError, match="append-only"):
        with store.backend.transaction() as tx:
            tx.execute("DELETE FROM events WHERE position = 2")
    assert list(store.iter_rows()) == before
    with store.backend.transaction() as tx:  # the one change allowed
        tx.execute("UPDATE events SET data = NULL WHERE position = 2")
    (row,) = [r for rows in store.iter_rows() for r in rows if r.position == 2]
    assert row.data is None and row._replace(data=before[0][1].data) == before[0][1]
    assert store.verify().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET rowid = 10 WHERE position = 2",  # SQLite: the rowid is position
        "UPDATE events SET _rowid_ = 10, data = NULL WHERE position = 2",
        "UPDATE events SET oid = 10, data = NULL WHERE position = 2",
        "INSERT INTO events SELECT * FROM events WHERE position = 2 "
        "ON CONFLICT (position) DO UPDATE SET type = 'x', data = NULL",
        "INSERT INTO events SELECT * FROM events WHERE position = 2 ON CONFLICT (position) DO UPDATE SET data = x'00'",
        # REPLACE deletes the conflicting row without firing DELETE triggers: refused before it acts
        "INSERT OR REPLACE INTO events SELECT * FROM events WHERE position = 2",
        "REPLACE INTO events SELECT * FROM events WHERE position = 2",
        "INSERT OR REPLACE INTO events (position, stream_id, version, type, data, metadata, data_digest, "
        "metadata_digest, recorded_at, prev_hash, hash, event_id) SELECT 999, stream_id, version, 'x', data, "
        "metadata, data_digest, metadata_digest, recorded_at, prev_hash, hash, event_id FROM events WHERE position = 2",
        "INSERT OR REPLACE INTO events (stream_id, version, type, data_digest, metadata_digest, recorded_at, "
        "prev_hash, hash, event_id) SELECT stream_id, version, 'x', data_digest, metadata_digest, recorded_at, prev_hash, "
        "hash, event_id FROM events WHERE position = 2",
    ],
)
def test_the_guard_refuses_updates_through_rowid_and_upserts(sqlite_store: EventStore, statement: str) -> None:
    _guarded_store(sqlite_store)
    before = list(sqlite_store.iter_rows())
    with pytest.raises(EventStoreError, match="append-only"):
        with sqlite_store.backend.transaction() as tx:
            tx.execute(statement)
    assert list(sqlite_store.iter_rows()) == before


def test_the_guard_refuses_truncate_on_postgres(store: EventStore) -> None:
    if store.backend.dialect != "postgres":
        pytest.skip("TRUNCATE is a PostgreSQL statement")
    _guarded_store(store)
    with pytest.raises(EventStoreError, match="append-only"):
        with store.backend.transaction() as tx:
            tx.execute("TRUNCATE events")
    assert store.head()[0] == 2


# -- prune beside appends, and after a crash -----------------------------------------------


def test_prune_while_agents_append_loses_nothing(store: EventStore) -> None:
    _events(store, "old", 600)
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="old", keep="0s", by="ops")
    receipts: list[Any] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def agent(n: int) -> None:
        try:
            for _ in range(400):
                if stop.is_set():
                    return
                receipts.extend(store.append(f"live-{n}", [NewEvent(type="note", data={"n": n})]))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        report = retention.prune(store, now=LATER, batch_size=50)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert report.count == 600 and report.batches >= 12
    assert len(receipts) > 0
    assert all(store.verify_receipt(r).ok for r in receipts)
    live = [e for e in store.read_all() if e.stream_id.startswith("live-")]
    assert len(live) == len(receipts) and not any(e.pruned for e in live)
    assert store.verify().ok


def test_an_interrupted_prune_is_recorded_by_the_next(sqlite_store: EventStore) -> None:
    store = sqlite_store
    _events(store, "a", 10)
    with store.backend.transaction() as tx:  # what a prune killed after one batch leaves
        tx.execute("UPDATE events SET data = NULL WHERE position <= 3")
        tx.execute(
            "INSERT INTO retention_runs (id, started_at, heartbeat, by_whom, count, from_position, to_position, "
            "policies) VALUES ('run-x', '2026-01-01T00:00:00.000000Z', 0, 'ops', 3, 1, 3, '{\"type:note\": 3}')"
        )
    report = retention.prune(store, now=LATER, by="ops")  # no policy: only the record
    assert report.recovered == 1 and report.count == 0
    (record,) = _types(store, "retention.pruned")
    assert record == {
        "from_position": 1,
        "to_position": 3,
        "count": 3,
        "policies": {"type:note": 3},
        "by": "ops",
        "held": 0,
        "interrupted": True,
    }
    assert store.backend.query("SELECT count(*) FROM retention_runs") == [(0,)]


_PRUNE_SCRIPT = """
import sys
from eventstore import EventStore, retention
with EventStore.open(sys.argv[1]) as s:
    retention.prune(s, batch_size=200, by="cron")  # a 0s policy and floor: every event is past it
"""


@pytest.mark.slow
def test_a_prune_killed_midway_leaves_a_valid_store_and_runs_again(tmp_path: Path) -> None:
    url = str(tmp_path / "kill.db")
    n = 60_000
    with EventStore.open(url) as store:
        for _ in range(0, n, 5000):
            _events(store, "a", 5000)
        retention.set_floor(store, "0s", by="ops")
        retention.set_policy(store, streams="a", keep="0s", by="ops")
    proc = subprocess.Popen([sys.executable, "-c", _PRUNE_SCRIPT, url])
    try:
        with EventStore.open(url) as store:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rows = store.backend.query("SELECT count FROM retention_runs")
                if rows and rows[0][0] > 0:
                    break
                time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with EventStore.open(url) as store:
        assert store.verify().ok
        done = sum(1 for e in store.read_all() if e.pruned)
        assert 0 < done < n, "the kill should land midway"
        report = retention.prune(store, now=LATER, stale_after=0, by="ops")
        assert report.recovered == 1 and report.count == n - done
        records = _types(store, "retention.pruned")
        assert [r.get("interrupted", False) for r in records] == [True, False]
        assert sum(r["count"] for r in records) == n
        assert all(e.pruned for e in store.read_stream("a"))
        assert store.verify().ok


# -- property: exactly the events past their (longest) policy lose their payload ------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(["a-1", "a-2", "b"]), st.sampled_from(["x", "y"])), min_size=1, max_size=12
    ),
    rules=st.lists(
        st.tuples(st.sampled_from(["streams:a-*", "streams:b", "type:x"]), st.integers(0, 3)),
        max_size=3,
        unique_by=lambda r: r[0],
    ),
    days=st.integers(0, 4),
)
def test_prune_removes_exactly_what_the_policies_allow(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[str, str]], rules: list[tuple[str, int]], days: int
) -> None:
    url = str(tmp_path_factory.mktemp("prop") / "p.db")
    with EventStore.open(url) as store:
        for stream, type_ in plan:
            store.append(stream, [NewEvent(type=type_, data={"v": 1})])
        retention.set_floor(store, "0s", by="t")
        for label, keep in rules:
            kind, pattern = label.split(":")
            retention.set_policy(store, keep=f"{keep}d", by="t", **{kind: pattern})  # type: ignore[arg-type]
        first = datetime.fromisoformat(next(store.read_all()).recorded_at.replace("Z", "+00:00"))
        now = first + timedelta(days=days, hours=12)
        retention.prune(store, now=now, batch_size=3)
        import fnmatch

        for e in store.read_all():
            if e.type.startswith("retention."):
                assert not e.pruned
                continue
            keeps = [
                k
                for label, k in rules
                if (label.startswith("type:") and e.type == label[5:])
                or (label.startswith("streams:") and fnmatch.fnmatchcase(e.stream_id, label[8:]))
            ]
            assert e.pruned == (bool(keeps) and max(keeps) <= days), (e, rules, days)
        assert store.verify().ok


# -- CLI --------------------------------------------------------------------------------------


def _cli(db: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--db", db, *args])


def test_cli_retention_prune_and_read(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    with EventStore.open(db) as store:
        _events(store, "agent-1", 3)
    r = _cli(db, "retention", "set", "--streams", "agent-*", "--keep", "7d", "--by", "ops")
    assert r.exit_code == 2 and "shorter than the minimum retention floor 183d" in r.output
    assert _cli(db, "retention", "floor", "0s", "--by", "ops").exit_code == 0
    assert _cli(db, "retention", "set", "--streams", "agent-*", "--keep", "0s", "--by", "ops").exit_code == 0
    r = _cli(db, "retention", "list", "--json")
    listed = json.loads(r.output)
    assert listed["floor"] == "0s" and listed["policies"][0]["pattern"] == "agent-*"
    r = _cli(db, "prune", "--dry-run", "--json", "--now", "2999-01-01T00:00:00Z")
    assert json.loads(r.output)["count"] == 3
    r = _cli(db, "prune", "--json", "--now", "2999-01-01T00:00:00Z", "--by", "cron")
    assert r.exit_code == 0 and json.loads(r.output)["count"] == 3
    lines = [json.loads(x) for x in _cli(db, "read", "--stream", "agent-1").output.splitlines()]
    assert [(x["pruned"], x["data"]) for x in lines] == [(True, None)] * 3
    assert _cli(db, "verify").exit_code == 0
    r = _cli(db, "prune", "--now", "yesterday")
    assert r.exit_code == 2 and "bad time" in r.output


def test_prune_benchmark_reports_prune_beside_a_file_copy(tmp_path: Path) -> None:
    from benchmarks.prune_bench import run_prune

    (fig,) = run_prune(2000, repeat=1, directory=str(tmp_path))
    assert fig.baseline.startswith("plain copy of the database file")
    assert fig.ours > 0 and fig.base > 0 and fig.target == ">= 100,000 events/s" and isinstance(fig.met, bool)


# -- a prune measures from the clock or earlier ---------------------------------------------


def test_a_prune_as_of_a_time_later_than_the_clock_is_refused_and_writes_nothing(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "_latest_now", lambda: datetime.now(UTC))  # the real clock
    retention.set_policy(store, streams="agent-*", keep="183d", by="ops")
    _events(store, "agent-1", 3)
    head = store.head()
    with pytest.raises(UserError, match=r"later than the clock.*nothing was changed"):
        retention.prune(store, now=LATER, by="ops")
    assert store.head() == head
    assert not any(e.pruned for e in store.read_all())
    assert retention.prune(store, now=LATER, dry_run=True).count == 3  # a preview of a later time is fine


def test_the_pruned_record_names_the_time_policies_were_measured_from(store: EventStore) -> None:
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="agent-*", keep="1d", by="ops")
    _events(store, "agent-1", 2)
    retention.prune(store, now="2990-05-01T12:00:00Z", by="ops")
    (record,) = _types(store, "retention.pruned")
    assert record["now"] == "2990-05-01T12:00:00.000000Z" and record["count"] == 2


def test_a_type_policy_over_the_logs_own_records_is_refused(store: EventStore) -> None:
    head = store.head()
    for type_ in ("archive.created", "hold.placed", "credential.*", "retention.pruned"):
        with pytest.raises(UserError, match="record of its own governance"):
            retention.set_policy(store, type=type_, keep="183d", by="ops")
    assert store.head() == head and retention.policies(store) == []


def test_archive_records_are_never_pruned(store: EventStore, tmp_path: Path) -> None:
    _events(store, "agent-1", 2)
    archives.write_archive(
        store, tmp_path / "a.gz", 2, signer=notes.Signer("t.example/log", notes.ALG_ED25519, bytes(32))
    )
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="*", keep="0s", by="ops")
    report = retention.prune(store, now=LATER, by="ops")
    assert report.count == 2
    (record,) = store.read_stream("archives")
    assert not record.pruned and record.data["through"] == 2


def test_a_governance_type_name_outside_its_stream_does_not_exempt_an_event(store: EventStore) -> None:
    """An agent naming its events like the log's own records cannot keep them past retention."""
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="agent-*", keep="0s", by="ops")
    store.append("agent-1", [NewEvent(type=t, data={"secret": "x"}) for t in ("hold.memo", "store.x", "note")])
    assert retention.prune(store, now=LATER, by="ops").count == 3
    assert all(e.pruned for e in store.read_stream("agent-1"))
    assert not any(e.pruned for e in store.read_stream("retention"))  # the real records stay
