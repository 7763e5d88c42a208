"""A pruned ``session.started`` (retention removed its payload) still starts its session."""

from __future__ import annotations

from eventstore import EventStore, NewEvent, retention
from projections import Runner, all_projections, run_all
from projections.check import check


def _ev(type_: str, **data: object) -> NewEvent:
    return NewEvent(type=type_, data=data, metadata={"agent_id": "a1"})


def _msg(sid: str, mid: str) -> NewEvent:
    return _ev("message.appended", session_id=sid, message_id=mid, role="user", content="x")


def test_a_session_whose_start_was_pruned_is_started_with_unknown_fields(store: EventStore) -> None:
    (start,) = store.append("session-s1", [_ev("session.started", session_id="s1", name="n", workspace="w1")])
    store.append("session-s1", [_msg("s1", "m1")])
    # a stream that does not name its session: the pruned start cannot be attributed
    store.append("misc", [_ev("session.started", session_id="s2"), _msg("s2", "m1")])
    retention.set_floor(store, "0s", by="t")
    retention.set_policy(store, type="session.started", keep="0s", by="t")
    assert retention.prune(store, by="t").count == 2
    runner = Runner(store)
    try:
        runner.rebuild_many([p.name for p in all_projections()])
        store.append("session-s1", [_ev("session.started", session_id="s1", name="late retry")])
        runner.run_once()
    finally:
        runner.release()
    q = store.backend.query
    rows = q("SELECT session_id, status, started_at, name, workspace_id, message_count, agent_count FROM sessions")
    # s1 started, what its start said is gone, and the later retry changes nothing (the first wins)
    assert sorted(rows) == [
        ("s1", "active", start.recorded_at, None, None, 1, 1),
        ("s2", "unknown", None, None, None, 1, 1),
    ]
    assert q("SELECT session_id, started FROM workspace_sessions ORDER BY session_id") == [("s1", 1)]
    assert q("SELECT count(*) FROM workspaces") == [(0,)]  # the workspace was only in the pruned payload
    report = check(store)
    assert [(d.kind, d.session_id) for d in report.dangling] == [("session.never_started", "s2")]
    run_all(store)  # live projection agrees with the rebuild
    assert sorted(q("SELECT session_id, status, started_at FROM sessions")) == [
        ("s1", "active", start.recorded_at),
        ("s2", "unknown", None),
    ]
