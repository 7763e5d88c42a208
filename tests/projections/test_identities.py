"""Ids are identities: retries count once, ids are scoped to their session, sessions are edited
and soft-deleted, references to sessions that never started stay visible (on every backend)."""

from __future__ import annotations

import pytest

from eventstore import EventStore, NewEvent
from eventstore.errors import EventStoreError
from projections import Runner, run_all


def ev(type: str, **data: object) -> NewEvent:
    return NewEvent(type=type, data=data)


def msg(sid: str, mid: str, tokens: int | None = None, content: str = "hi") -> NewEvent:
    return ev("message.appended", session_id=sid, message_id=mid, role="user", content=content, tokens_used=tokens)


def test_a_retried_message_counts_once_even_across_batches(store: EventStore) -> None:
    store.append("session-s1", [ev("session.started", session_id="s1"), msg("s1", "m1", 10)])
    run_all(store)
    store.append("session-s1", [msg("s1", "m1", 10, content="retry"), msg("s1", "m1", 10), msg("s1", "m2", 5)])
    Runner(store, batch_size=1).run_once()
    q = store.backend.query
    assert q("SELECT message_count, tokens_used FROM sessions") == [(2, 15)]
    assert q("SELECT message_id, content, position FROM messages ORDER BY position") == [
        ("m1", "hi", 2),  # the first occurrence wins
        ("m2", "hi", 5),
    ]


def test_a_retried_tool_event_counts_once(store: EventStore) -> None:
    start = ev("tool.started", session_id="s1", execution_id="x1", tool_name="search", input={"q": 1})
    fail = ev("tool.finished", session_id="s1", execution_id="x1", status="failed", error="boom")
    store.append("session-s1", [ev("session.started", session_id="s1"), start, start, fail])
    run_all(store)
    store.append(
        "session-s1",
        [start, fail, ev("tool.finished", session_id="s1", execution_id="x1", status="completed")],
    )
    run_all(store)
    q = store.backend.query
    assert q("SELECT tool_calls, tool_failures FROM sessions") == [(1, 1)]
    assert q("SELECT execution_id, status, error, position FROM tool_executions") == [("x1", "failed", "boom", 4)]


def test_a_repeated_session_started_keeps_the_first(store: EventStore) -> None:
    first = store.append("session-s1", [ev("session.started", session_id="s1", name="a", model="m1")])
    store.append("session-s1", [ev("session.started", session_id="s1", name="b", model="m2")])
    run_all(store)
    assert store.backend.query("SELECT name, model, started_at, status FROM sessions") == [
        ("a", "m1", first[0].recorded_at, "active")
    ]


def test_ids_are_scoped_to_their_session(store: EventStore) -> None:
    """The README's m1 in a second session neither overwrites session 42's nor steals its count."""
    store.append("session-42", [ev("session.started", session_id="42"), msg("42", "m1", 3, content="forty-two")])
    store.append("session-43", [ev("session.started", session_id="43"), msg("43", "m1", 4, content="forty-three")])
    x = {"execution_id": "x1", "tool_name": "t", "input": None}
    store.append("session-42", [ev("tool.started", session_id="42", **x)])
    store.append("session-43", [ev("tool.started", session_id="43", **x)])
    run_all(store)
    q = store.backend.query
    assert q("SELECT session_id, message_count, tokens_used, tool_calls FROM sessions ORDER BY session_id") == [
        ("42", 1, 3, 1),
        ("43", 1, 4, 1),
    ]
    assert q("SELECT session_id, message_id, content FROM messages ORDER BY session_id") == [
        ("42", "m1", "forty-two"),
        ("43", "m1", "forty-three"),
    ]
    assert q("SELECT session_id, execution_id FROM tool_executions ORDER BY session_id") == [("42", "x1"), ("43", "x1")]


def test_settings_reach_the_sessions_row(store: EventStore) -> None:
    store.append(
        "session-s1",
        [
            ev(
                "session.started",
                session_id="s1",
                temperature=0.2,
                max_tokens=4096,
                settings={"top_p": 0.9, "a": [1]},
                workspace="ws1",
            ),
            ev("session.status_changed", session_id="s1", status="completed"),
        ],
    )
    run_all(store)
    end = list(store.read_stream("session-s1"))[-1].recorded_at
    assert store.backend.query(
        "SELECT temperature, max_tokens, settings, workspace_id, completed_at, deleted_at FROM sessions"
    ) == [(0.2, 4096, '{"a":[1],"top_p":0.9}', "ws1", end, None)]


def test_a_reference_to_a_session_that_never_started_is_marked_unknown(store: EventStore) -> None:
    store.append("session-ghost", [msg("ghost", "m1", 7)])
    run_all(store)
    assert store.backend.query("SELECT status, started_at, message_count FROM sessions") == [("unknown", None, 1)]
    store.append("session-ghost", [ev("session.started", session_id="ghost")])  # late start: now active
    run_all(store)
    assert store.backend.query("SELECT status, message_count FROM sessions") == [("active", 1)]


def test_session_updated_and_deleted(store: EventStore) -> None:
    store.append("session-s1", [ev("session.started", session_id="s1", name="a", task="t", model="m1")])
    store.append("session-s2", [ev("session.started", session_id="s2")])
    store.append(
        "session-s1",
        [
            ev("session.updated", session_id="s1", name="renamed", model="m2", settings={"k": 1}, workspace="w"),
            ev("session.updated", session_id="s1", task="t2"),
        ],
    )
    deleted = store.append("session-s1", [ev("session.deleted", session_id="s1", reason="user asked")])
    store.append("session-s1", [ev("session.deleted", session_id="s1")])  # a retry: the first wins
    run_all(store)
    q = store.backend.query
    assert q("SELECT name, task, model, settings, workspace_id, deleted_at FROM sessions WHERE session_id = 's1'") == [
        ("renamed", "t2", "m2", '{"k":1}', "w", deleted[0].recorded_at)
    ]
    assert q("SELECT session_id FROM sessions WHERE deleted_at IS NULL") == [("s2",)]  # the live sessions


@pytest.mark.parametrize(
    "type_,data",
    [
        ("session.started", {"session_id": ""}),
        ("session.started", {"session_id": "s", "task": ""}),
        ("session.updated", {"session_id": "s", "task": ""}),
        ("session.deleted", {"session_id": ""}),
        ("message.appended", {"session_id": "s", "message_id": "", "role": "user", "content": "x"}),
        ("message.appended", {"session_id": "", "message_id": "m", "role": "user", "content": "x"}),
        ("tool.started", {"session_id": "s", "execution_id": "", "tool_name": "t", "input": None}),
        ("tool.started", {"session_id": "s", "execution_id": "x", "tool_name": "", "input": None}),
        ("tool.finished", {"session_id": "s", "execution_id": "", "status": "completed"}),
        ("metric.recorded", {"metric": "", "value": 1.0}),
    ],
)
def test_empty_ids_are_refused(sqlite_store: EventStore, type_: str, data: dict[str, object]) -> None:
    with pytest.raises(EventStoreError, match=r"at `\$\.data\.\w+`"):
        sqlite_store.append("s", [NewEvent(type=type_, data=data)])
    assert sqlite_store.backend.head() == (0, None)


def test_a_call_seen_only_by_its_finish_counts_as_a_call_so_failures_never_exceed_calls(store: EventStore) -> None:
    def by_a(type_: str, **data: object) -> NewEvent:
        return NewEvent(type=type_, data=data, metadata={"agent_id": "a"})

    store.append("session-s1", [by_a("session.started", session_id="s1")])
    store.append("session-s1", [by_a("tool.finished", session_id="s1", execution_id="x1", status="failed")])
    run_all(store)
    q = store.backend.query
    assert q("SELECT tool_calls, tool_failures FROM sessions") == [(1, 1)]
    assert q("SELECT tool_calls, tool_failures FROM agents") == [(1, 1)]
    store.append("session-s1", [by_a("tool.started", session_id="s1", execution_id="x1", tool_name="sh", input={})])
    Runner(store, batch_size=1).run_once()  # its start arrives late, in a later batch: still one call
    assert q("SELECT tool_calls, tool_failures FROM sessions") == [(1, 1)]
    assert q("SELECT tool_calls, tool_failures FROM agents") == [(1, 1)]
