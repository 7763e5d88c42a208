"""``projections.check`` / ``eventstore project check``: dangling references are listed, never dropped."""

from __future__ import annotations

import json

from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main
from projections import run_all
from projections.check import check


def _msg(sid: str, mid: str, parent: str | None = None) -> NewEvent:
    data = {"session_id": sid, "message_id": mid, "role": "user", "content": "x"}
    if parent:
        data["parent_id"] = parent
    return NewEvent(type="message.appended", data=data)


def _append_dangling(store: EventStore) -> None:
    store.append("a", [NewEvent(type="session.started", data={"session_id": "ok"}), _msg("ok", "m1")])
    store.append("b", [_msg("ghost", "g1"), _msg("ghost", "g2")])  # a session that never started
    store.append(
        "c",
        [
            NewEvent(type="tool.finished", data={"session_id": "ok", "execution_id": "e9", "status": "failed"}),
            NewEvent(
                type="tool.started",
                data={"session_id": "ok", "execution_id": "e1", "tool_name": "sh", "input": {}, "message_id": "m7"},
            ),
            _msg("ok", "m2", parent="m0"),
            NewEvent(type="session.deleted", data={"session_id": "ok"}),
        ],
    )
    store.append("d", [_msg("ok", "m3")])


def test_check_lists_every_kind_of_dangling_reference(store: EventStore) -> None:
    store.append("a", [NewEvent(type="session.started", data={"session_id": "ok"}), _msg("ok", "m1", parent=None)])
    run_all(store)
    clean = check(store)
    assert clean.ok and set(clean.counts.values()) == {0}
    _append_dangling(store)
    run_all(store)
    report = check(store)
    assert not report.ok
    assert {k: n for k, n in report.counts.items() if n} == {
        "session.never_started": 1,
        "tool.finished_without_start": 1,
        "tool.unknown_message": 1,
        "message.unknown_parent": 1,
        "session.event_after_delete": 1,
    }
    by_kind = {d.kind: d for d in report.dangling}
    assert by_kind["session.never_started"].session_id == "ghost"
    assert "2 message(s)" in by_kind["session.never_started"].detail
    assert by_kind["tool.finished_without_start"].item_id == "e9"
    assert by_kind["tool.unknown_message"].item_id == "e1" and "'m7'" in by_kind["tool.unknown_message"].detail
    assert by_kind["message.unknown_parent"].item_id == "m2"
    assert by_kind["session.event_after_delete"].session_id == "ok"
    assert "1 event(s)" in by_kind["session.event_after_delete"].detail
    # the evidence stays in the read models: nothing was dropped
    assert store.backend.query("SELECT status, message_count FROM sessions WHERE session_id = 'ghost'") == [
        ("unknown", 2)
    ]


def test_project_check_cli_exit_codes(tmp_path) -> None:
    db = str(tmp_path / "c.db")
    with EventStore.open(db) as store:
        store.append("a", [NewEvent(type="session.started", data={"session_id": "ok"})])
        run_all(store)
    env = {"EVENTSTORE_DEBUG": "1"}
    r = CliRunner().invoke(main, ["--db", db, "project", "check"], env=env)
    assert r.exit_code == 0 and "no dangling references" in r.stderr, r.output
    with EventStore.open(db) as store:
        _append_dangling(store)
        run_all(store)
    r = CliRunner().invoke(main, ["--db", db, "project", "check"], env=env)
    assert r.exit_code == 1
    assert "session.never_started: session ghost: session referenced by 2 message(s)" in r.stdout
    report = json.loads(CliRunner().invoke(main, ["--db", db, "project", "check", "--json"], env=env).stdout)
    assert report["ok"] is False and report["counts"]["tool.finished_without_start"] == 1
    # an execution finished without its start has no session to name: the line says so by leaving it out
    with EventStore.open(db) as store:
        store.append("x", [NewEvent(type="execution.finished", data={"execution_id": "x2", "outcome": "failed"})])
        run_all(store)
    r = CliRunner().invoke(main, ["--db", db, "project", "check"], env=env)
    assert "execution.finished_without_start: x2: execution.finished (failed)" in r.stdout
    assert "session None" not in r.stdout


def _ev(type_: str, **data: object) -> NewEvent:
    return NewEvent(type=type_, data=data)


def test_check_lists_dangling_instances_executions_collisions_metrics_and_workspaces(store: EventStore) -> None:
    store.append(
        "a",
        [
            _ev("workspace.created", workspace_id="w-ok", name="repo"),
            _ev("session.started", session_id="ok", workspace="w-ok"),
            _ev("session.started", session_id="ok2", workspace="w-gone"),  # a workspace nobody created
            _ev("instance.started", session_id="ghost-i", instance_id="i1", agent_name="alice"),
            _ev("instance.finished", session_id="ok", instance_id="i9", status="failed"),
            _ev("execution.started", execution_id="x1", workflow="fix", session_id="ghost-x"),
            _ev("execution.finished", execution_id="x2", outcome="failed"),
            _ev("metric.recorded", metric="stage_ms", value=3.0, execution_id="x3"),
            _ev("collision.detected", resource="file:a.py", kind="concurrent_edit", session_id="ghost-c"),
            _ev("metric.recorded", metric="latency", value=1.0, session_id="ghost-m"),
        ],
    )
    run_all(store)
    report = check(store)
    assert {k: n for k, n in report.counts.items() if n} == {
        "session.never_started": 4,
        "instance.unknown_session": 1,
        "instance.finished_without_start": 1,
        "execution.unknown_session": 1,
        "execution.finished_without_start": 1,
        "execution.metric_without_start": 1,
        "collision.unknown_session": 1,
        "metric.unknown_session": 1,
        "workspace.never_created": 1,
    }
    found = {(d.kind, d.session_id, d.item_id) for d in report.dangling}
    assert {
        ("instance.unknown_session", "ghost-i", "i1"),
        ("instance.finished_without_start", "ok", "i9"),
        ("execution.unknown_session", "ghost-x", "x1"),
        ("execution.finished_without_start", None, "x2"),
        ("execution.metric_without_start", None, "x3"),
        ("collision.unknown_session", "ghost-c", "#9"),
        ("metric.unknown_session", "ghost-m", None),
        ("workspace.never_created", "ok2", "w-gone"),
    } <= found
    # every session referred to has a row, marked, in the sessions model and its view
    q = store.backend.query
    ghosts = [("ghost-c", "unknown"), ("ghost-i", "unknown"), ("ghost-m", "unknown"), ("ghost-x", "unknown")]
    assert q("SELECT session_id, status FROM sessions WHERE started_at IS NULL ORDER BY session_id") == ghosts
    assert q("SELECT session_id, status FROM session_complete WHERE started_at IS NULL ORDER BY session_id") == ghosts
    assert q("SELECT metric_count FROM sessions WHERE session_id = 'ghost-m'") == [(1,)]
    # the missing events arrive late: nothing dangles any more
    store.append(
        "b",
        [_ev("session.started", session_id=s) for s, _ in ghosts]
        + [
            _ev("workspace.created", workspace_id="w-gone", name="late"),
            _ev("instance.started", session_id="ok", instance_id="i9", agent_name="bob"),
            _ev("execution.started", execution_id="x2", workflow="fix"),
            _ev("execution.started", execution_id="x3", workflow="fix"),
        ],
    )
    run_all(store)
    assert check(store).ok


def test_events_after_a_delete_are_found_by_position_whatever_their_kind(store: EventStore) -> None:
    store.append("a", [_ev("session.started", session_id="s"), _msg("s", "m1")])
    # in the same append as the delete: the same recorded_at, a later position
    deleted = store.append("a", [_ev("session.deleted", session_id="s"), _msg("s", "m2")])
    store.append(
        "a",
        [
            _ev("session.deleted", session_id="s"),  # a retried delete is no event after it
            _ev("tool.finished", session_id="s", execution_id="x1", status="failed"),
            _ev("instance.started", session_id="s", instance_id="i1", agent_name="alice"),
            _ev("session.status_changed", session_id="s", status="active"),
        ],
    )
    run_all(store)
    assert store.backend.query("SELECT deleted_position, events_after_delete FROM sessions") == [
        (deleted[0].position, 4)
    ]
    (found,) = [d for d in check(store).dangling if d.kind == "session.event_after_delete"]
    assert (
        found.session_id == "s"
        and f"4 event(s) naming the session after its session.deleted at position {deleted[0].position}" in found.detail
    )


def test_a_session_written_by_another_credential_shows_its_writers(store: EventStore) -> None:
    """Read models apply an event naming another agent's session (multi-agent sessions need it);
    the documented queries show who wrote it and which changes came from others
    (docs/projections.md, "What read models trust")."""
    store.append(
        "agent-8/s", [NewEvent(type="session.started", data={"session_id": "s8"}, metadata={"principal": "agent8"})]
    )
    store.append(
        "agent-7/x",
        [
            NewEvent(
                type="session.status_changed",
                data={"session_id": "s8", "status": "completed"},
                metadata={"principal": "agent7"},
            )
        ],
    )
    store.append("agent-8/s", [_msg("s8", "m1")])
    run_all(store)
    agg = "string_agg(agent, ',' ORDER BY agent)" if store.backend.dialect == "postgres" else "group_concat(agent)"
    rows = store.backend.query(f"SELECT session_id, {agg} FROM session_agents GROUP BY session_id HAVING count(*) > 1")
    assert [(sid, sorted(a.split(","))) for sid, a in rows] == [("s8", ["agent7", "agent8"])]
    # the change still applies, and the row shows it came from another writer than the starter
    assert store.backend.query(
        "SELECT session_id, status, started_by, changes_by_others FROM sessions WHERE changes_by_others > 0"
    ) == [("s8", "completed", "agent8", 1)]
    # the starter's own changes, and messages by anyone, are not counted
    store.append(
        "agent-8/s",
        [
            NewEvent(type="session.deleted", data={"session_id": "s8"}, metadata={"principal": "agent8"}),
            NewEvent(type="session.updated", data={"session_id": "s8", "name": "n"}, metadata={"principal": "agent7"}),
        ],
    )
    store.append(
        "agent-7/x", [NewEvent(type="message.appended", data=_msg("s8", "m2").data, metadata={"principal": "agent7"})]
    )
    run_all(store)
    assert store.backend.query("SELECT changes_by_others, message_count FROM sessions WHERE session_id = 's8'") == [
        (2, 2)
    ]
