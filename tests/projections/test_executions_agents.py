"""Executions (with stage timings and the tier-2 views), collisions (and conflicts the store
records), the agents read model and its audit index: what a team moving from a tier-2 audit
schema relies on (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main
from eventstore.errors import InvalidEvent, UserError, WrongExpectedVersion
from eventstore.store import CONFLICTS_STREAM
from projections import Runner, agent_activity, run_all
from projections.agents import ACTIVITY_SQL


def ev(type_: str, data: dict[str, Any], agent: str | None = None, principal: str | None = None) -> NewEvent:
    meta: dict[str, Any] = {}
    if agent:
        meta["agent_id"] = agent
    if principal:
        meta["principal"] = principal
    return NewEvent(type=type_, data=data, metadata=meta)


def run_pipeline(store: EventStore, x: str, agent: str, outcome: str, *, retry: bool = False) -> None:
    started = ev("execution.started", {"execution_id": x, "workflow": "deploy", "kind": "pipeline"}, agent)
    store.append(f"exec-{x}", [started])
    if retry:  # an agent that did not see its acknowledgement sends it again
        store.append(f"exec-{x}", [started])
    for stage, ms in (("build", 120.0), ("test", 300.0), ("test", 500.0)):
        store.append(
            f"exec-{x}",
            [ev("metric.recorded", {"metric": "stage.ms", "value": ms, "stage": stage, "execution_id": x}, agent)],
        )
    done = ev("execution.finished", {"execution_id": x, "outcome": outcome, "duration_ms": 1000.0}, agent)
    store.append(f"exec-{x}", [done])
    if retry:
        store.append(f"exec-{x}", [ev("execution.finished", {"execution_id": x, "outcome": "succeeded"}, agent)])


def views(store: EventStore) -> dict[str, list[tuple[Any, ...]]]:
    q = store.backend.query
    return {
        "recent": q("SELECT execution_id, agent_id, status, stage_count FROM recent_executions ORDER BY execution_id"),
        "summary": [
            (r[0], r[1], r[2], r[3], round(r[4], 3))
            for r in q(
                "SELECT agent_id, executions, succeeded, failed, success_rate FROM agent_performance_summary "
                "ORDER BY agent_id"
            )
        ],
        "stages": [
            (r[0], r[1], r[2], r[3], round(r[4], 3), r[5])
            for r in q(
                "SELECT workflow, stage, executions, observations, mean, max FROM pipeline_stage_performance "
                "ORDER BY workflow, stage"
            )
        ],
    }


def test_executions_with_stage_timings_and_the_tier2_views_survive_a_rebuild(store: EventStore) -> None:
    run_pipeline(store, "x1", "a1", "succeeded", retry=True)
    run_pipeline(store, "x2", "a1", "failed")
    run_pipeline(store, "x3", "a2", "succeeded")
    run_all(store)
    q = store.backend.query
    row = q("SELECT workflow, kind, agent_id, status, duration_ms, stage_count, metric_count FROM executions "
            "WHERE execution_id = 'x1'")[0]  # fmt: skip
    assert row == ("deploy", "pipeline", "a1", "succeeded", 1000.0, 2, 3)  # the retried finish changed nothing
    assert q("SELECT count, total, min, max FROM execution_stages WHERE execution_id = 'x1' AND stage = 'test'") == [
        (2, 800.0, 300.0, 500.0)
    ]
    before = views(store)
    assert before["recent"] == [("x1", "a1", "succeeded", 2), ("x2", "a1", "failed", 2), ("x3", "a2", "succeeded", 2)]
    assert before["summary"] == [("a1", 2, 1, 1, 0.5), ("a2", 1, 1, 0, 1.0)]
    assert before["stages"] == [("deploy", "build", 3, 3, 120.0, 120.0), ("deploy", "test", 3, 6, 400.0, 500.0)]
    runner = Runner(store)
    runner.rebuild("executions")  # PostgreSQL refuses to drop a view other views depend on
    assert views(store) == before
    run_pipeline(store, "x4", "a2", "failed")
    runner.run_once()
    assert ("x4", "a2", "failed", 2) in views(store)["recent"]


def test_an_execution_finished_before_it_started_is_kept_and_marked(store: EventStore) -> None:
    store.append("e", [ev("execution.finished", {"execution_id": "lost", "outcome": "failed"})])
    run_all(store)
    # only referred to: 'unknown' (the outcome kept beside it) until its start arrives
    assert store.backend.query("SELECT status, outcome, workflow FROM executions WHERE execution_id = 'lost'") == [
        ("unknown", "failed", None)
    ]
    store.append("e", [ev("execution.started", {"execution_id": "lost", "workflow": "w"}, "a1")])
    run_all(store)
    # a finish logged before its start: no duration is made up from the two times
    assert store.backend.query("SELECT status, workflow, agent_id, duration_ms FROM executions") == [
        ("failed", "w", "a1", None)
    ]


def test_an_slo_violation_names_the_execution_that_breached(store: EventStore) -> None:
    store.append(
        "slo",
        [
            NewEvent(
                type="slo.defined",
                data={"slo_id": "s", "metric": "stage.ms", "objective": "max", "threshold": 400.0, "severity": "high"},
            )
        ],
    )
    run_pipeline(store, "x1", "a1", "succeeded")  # build 120, test 300, test 500: the 500 breaches
    run_all(store)
    assert store.backend.query("SELECT slo_id, execution_id, observed FROM slo_violations") == [("s", "x1", 500.0)]


def test_new_events_are_validated() -> None:
    with EventStore.open(":memory:") as store:
        for type_, data in (
            ("execution.started", {"execution_id": "", "workflow": "w"}),
            ("execution.finished", {"execution_id": "x", "outcome": "done"}),
            ("collision.detected", {"resource": "r"}),
            ("metric.recorded", {"metric": "m", "value": 1.0, "execution_id": ""}),
        ):
            with pytest.raises(InvalidEvent, match=r"\$\.data"):
                store.append("s", [NewEvent(type=type_, data=data)])
        assert store.head()[0] == 0


def test_a_refused_append_is_recorded_as_a_collision_when_asked(store: EventStore) -> None:
    store.append("session-1", [ev("session.started", {"session_id": "1"}, "a1")])
    late = ev("message.appended", {"session_id": "1", "message_id": "m", "role": "user", "content": "x"}, "a2")
    with pytest.raises(WrongExpectedVersion):
        store.append("session-1", [late], expected_version=0)  # not asked: nothing recorded
    assert store.stream_version(CONFLICTS_STREAM) == 0
    with pytest.raises(WrongExpectedVersion) as refused:
        store.append("session-1", [late], expected_version=0, record_conflicts=True)
    assert refused.value.actual == 1
    assert store.stream_version("session-1") == 1  # still refused: nothing of it written
    [recorded] = list(store.read_stream(CONFLICTS_STREAM))
    assert recorded.type == "collision.detected"
    assert recorded.data == {
        "resource": "session-1",
        "kind": "expected_version",
        "agents": ["a2"],
        "session_id": "1",
        "resolution": "refused",
        "stream_id": "session-1",
        "expected_version": 0,
        "actual_version": 1,
    }
    assert recorded.metadata == {"agent_id": "a2"}
    store.append("session-1", [late], expected_version=1, record_conflicts=True)  # accepted: nothing recorded
    assert store.stream_version(CONFLICTS_STREAM) == 1
    run_all(store)
    assert store.backend.query(
        "SELECT session_id, resource, kind, resolution, agents, agent_count, expected_version, actual_version "
        "FROM collisions"
    ) == [("1", "session-1", "expected_version", "refused", '["a2"]', 1, 0, 1)]


def test_a_collision_with_an_id_counts_once(store: EventStore) -> None:
    c = ev(
        "collision.detected", {"resource": "file:a.py", "kind": "write", "agents": ["a1", "a2"], "collision_id": "c"}
    )
    anon = ev("collision.detected", {"resource": "file:a.py", "kind": "write", "agents": ["a1", "a2"]})
    for e in (c, anon, c, anon):
        store.append("c", [e])
    run_all(store)
    assert store.backend.query("SELECT collision_id, agent_count FROM collisions ORDER BY position") == [
        ("c", 2),
        (None, 2),
        (None, 2),
    ]


def test_agents_read_model_counts_identities_and_prefers_the_principal(store: EventStore) -> None:
    msg = {"session_id": "s1", "message_id": "m1", "role": "assistant", "content": "hi", "tokens_used": 7}
    for e in (
        ev("session.started", {"session_id": "s1"}, "a1"),
        ev("message.appended", msg, "a1"),
        ev("message.appended", msg, "a1"),  # a retry
        ev("tool.started", {"session_id": "s1", "execution_id": "t", "tool_name": "grep", "input": {}}, "a1"),
        ev("tool.finished", {"session_id": "s1", "execution_id": "t", "status": "failed"}, "a1"),
        ev("session.started", {"session_id": "s2"}, "claims-a1", principal="svc"),  # the credential wins
        ev("session.started", {"session_id": "s3"}),  # nobody's
    ):
        store.append("s", [e])
    run_all(store)
    rows = {r[0]: r[1:] for r in store.backend.query(
        "SELECT agent, events, sessions, messages, tokens_used, tool_calls, tool_failures FROM agents")}  # fmt: skip
    assert rows == {"a1": (5, 1, 1, 7, 1, 1), "svc": (1, 1, 0, 0, 0, 0)}


def test_agent_activity_by_time(store: EventStore) -> None:
    for i in range(5):
        store.append("s", [ev("session.started", {"session_id": f"s{i}"}, "a1" if i % 2 == 0 else "a2")])
    run_all(store)
    got = agent_activity(store, "a1")
    assert [e.data["session_id"] for e in got] == ["s0", "s2", "s4"]
    middle = got[1].recorded_at
    assert [e.data["session_id"] for e in agent_activity(store, "a1", since=middle)] == ["s2", "s4"]
    assert [e.data["session_id"] for e in agent_activity(store, "a1", until=middle)] == ["s0"]
    assert [e.position for e in agent_activity(store, "a1", limit=1)] == [got[0].position]
    assert agent_activity(store, "a1", since="2999-01-01") == []
    with pytest.raises(UserError, match="since 'yesterday' is not an ISO date"):
        agent_activity(store, "a1", since="yesterday")


def plan(store: EventStore, sql: str, params: tuple[Any, ...]) -> str:
    return " | ".join(str(r[-1]) for r in store.backend.query("EXPLAIN QUERY PLAN " + sql, params))


def test_audit_lookups_by_agent_and_time_use_indexes(sqlite_store: EventStore) -> None:
    run_all(sqlite_store)  # tables exist (empty): the plan is chosen from the schema
    p = plan(sqlite_store, ACTIVITY_SQL, ("a1", "2026", "2027", 10))
    assert "agent_events__g1 USING PRIMARY KEY (agent=? AND recorded_at>? AND recorded_at<?)" in p, p
    p = plan(
        sqlite_store,
        "SELECT execution_id FROM executions WHERE agent_id = ? AND started_at >= ? ORDER BY started_at",
        ("a1", "2026"),
    )
    assert "INDEX executions__g1_agent (agent_id=? AND started_at>?)" in p and "TEMP B-TREE" not in p, p
    p = plan(sqlite_store, "SELECT * FROM executions WHERE started_at >= ? ORDER BY started_at", ("2026",))
    assert "INDEX executions__g1_started" in p and "SCAN" not in p, p


def test_cli_agents_list_and_events(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    with EventStore.open(db) as store:
        store.append("s", [ev("session.started", {"session_id": "s0"}, "a1")])
    cli = CliRunner()
    r = cli.invoke(main, ["--db", db, "agents", "list"])
    assert r.exit_code == 2 and "error: the 'agents' read model has not been built yet" in r.output, r.output
    assert cli.invoke(main, ["--db", db, "project", "run"]).exit_code == 0
    r = cli.invoke(main, ["--db", db, "agents", "list", "--json"])
    assert r.exit_code == 0, r.output
    assert [(a["agent"], a["events"]) for a in json.loads(r.output)] == [("a1", 1)]
    r = cli.invoke(main, ["--db", db, "agents", "events", "a1", "--since", "2000-01-01"])
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["data"]["session_id"] for line in r.output.splitlines()] == ["s0"]
    r = cli.invoke(main, ["--db", db, "agents", "events", "a1", "--until", "soon"])
    assert r.exit_code == 2 and r.output.startswith("error: until 'soon'"), r.output


def test_an_execution_is_credited_to_the_writing_credential_not_to_the_agent_id_it_claims(store: EventStore) -> None:
    store.append(
        "e",
        [
            ev(
                "execution.started",
                {"execution_id": "x", "workflow": "w", "agent_id": "someone-else"},
                principal="svc-7",
            ),
            ev("execution.started", {"execution_id": "y", "workflow": "w", "agent_id": "a2"}),  # no credential
        ],
    )
    run_all(store)
    assert store.backend.query("SELECT execution_id, agent_id FROM executions ORDER BY execution_id") == [
        ("x", "svc-7"),
        ("y", "a2"),
    ]
