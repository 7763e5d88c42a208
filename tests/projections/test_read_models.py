"""Each read model's rows checked against the events that made them (on every backend)."""

from __future__ import annotations

from eventstore import EventStore, NewEvent
from projections import Runner


def ev(type: str, **data: object) -> NewEvent:
    return NewEvent(type=type, data=data)


def row(store: EventStore, sql: str, *params: object) -> dict[str, object]:
    cur = store.backend.query(sql, params)
    assert len(cur) == 1, cur
    return cur[0]  # type: ignore[return-value]


def test_read_models_follow_their_events(store: EventStore) -> None:
    a = store.append(
        "session-s1",
        [
            ev("session.started", session_id="s1", model="claude", name="triage"),
            ev("message.appended", session_id="s1", message_id="m1", role="user", content="hi"),
            ev(
                "message.appended",
                session_id="s1",
                message_id="m2",
                role="assistant",
                content="hello",
                tokens_used=42,
                model="claude",
                finish_reason="stop",
                parent_id="m1",
            ),
            ev("tool.started", session_id="s1", execution_id="x1", tool_name="search", input={"q": "cats"}),
            ev(
                "tool.finished",
                session_id="s1",
                execution_id="x1",
                status="failed",
                error="boom",
                duration_ms=12.5,
                retry_count=2,
            ),
            ev("tool.started", session_id="s1", execution_id="x2", tool_name="read", input={}),
            ev("session.status_changed", session_id="s1", status="paused", reason="waiting"),
        ],
    )
    for v in [10.0, 20.0, 30.0, 40.0]:
        store.append("metrics", [ev("metric.recorded", metric="latency", value=v, stage="gen", unit="ms")])
    store.append("metrics", [ev("metric.recorded", metric="latency", value=5)])
    Runner(store).run_once()
    q = store.backend.query

    assert q(
        "SELECT session_id, status, model, name, message_count, tokens_used, tool_calls, tool_failures, "
        "started_at, updated_at FROM sessions"
    ) == [("s1", "paused", "claude", "triage", 2, 42, 2, 1, a[0].recorded_at, a[-1].recorded_at)]
    assert q("SELECT message_id, session_id, role, content, tokens_used, position FROM messages ORDER BY position") == [
        ("m1", "s1", "user", "hi", None, 2),
        ("m2", "s1", "assistant", "hello", 42, 3),
    ]
    assert q(
        "SELECT execution_id, tool_name, status, input, output, error, duration_ms, retry_count "
        "FROM tool_executions ORDER BY execution_id"
    ) == [
        ("x1", "search", "failed", '{"q":"cats"}', None, "boom", 12.5, 2),
        ("x2", "read", "started", "{}", None, None, None, None),
    ]
    assert q("SELECT metric, stage, unit, count, min, max, mean, p50, p95, p99 FROM metrics ORDER BY stage") == [
        ("latency", "", None, 1, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0),
        ("latency", "gen", "ms", 4, 10.0, 40.0, 25.0, 20.0, 40.0, 40.0),
    ]


def test_slo_breach_episodes(store: EventStore) -> None:
    store.append(
        "slo",
        [
            ev(
                "slo.defined",
                slo_id="lat-max",
                metric="latency",
                objective="max",
                threshold=100.0,
                severity="critical",
                window=2,
            )
        ],
    )
    values = [50, 150, 160, 20, 30, 120]  # window of 2: max goes 50,150,160,160,30,120
    positions = [store.append("m", [ev("metric.recorded", metric="latency", value=v)])[0].position for v in values]
    Runner(store).run_once()
    rows = store.backend.query(
        "SELECT slo_id, position, observed, peak, threshold, severity, ended_position "
        "FROM slo_violations ORDER BY position"
    )
    assert rows == [
        ("lat-max", positions[1], 150.0, 160.0, 100.0, "critical", positions[4]),
        ("lat-max", positions[5], 120.0, 120.0, 100.0, "critical", None),
    ]
    assert store.backend.query("SELECT in_breach, observed FROM slos") == [(1, 120.0)]


def test_live_projection_equals_rebuild_on_every_backend(store: EventStore) -> None:
    import random

    from .helpers import append_all, dump, scenario

    events = scenario(random.Random(3), 120)
    runner = Runner(store, batch_size=17)
    append_all(store, events[:50])
    runner.run_once()
    append_all(store, events[50:])
    runner.run_once()
    live = dump(store)
    for p in runner.projections:
        runner.rebuild(p.name)
    assert dump(store) == live
