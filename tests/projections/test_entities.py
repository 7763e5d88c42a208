"""Workspaces, agent instances, agent memory and the ``session_complete`` view (on every backend):
rows follow docs/events.md, retries count once, the view survives rebuilds, queries use indexes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventstore import EventStore, NewEvent
from eventstore.errors import InvalidEvent
from projections import Runner, run_all


def ev(type: str, **data: object) -> NewEvent:
    return NewEvent(type=type, data=data)


def at(delta: float) -> str:
    """A time ``delta`` seconds from now in the store's format (as ``recorded_at``)."""
    return (datetime.now(UTC) + timedelta(seconds=delta)).isoformat(timespec="microseconds")[:-6] + "Z"


def test_workspaces_count_their_sessions_and_follow_their_events(store: EventStore) -> None:
    created = store.append(
        "workspace-w1", [ev("workspace.created", workspace_id="w1", name="repo", path="/src/repo", settings={"b": 1})]
    )
    store.append("workspace-w1", [ev("workspace.created", workspace_id="w1", name="retry", path="/elsewhere")])
    store.append("session-s1", [ev("session.started", session_id="s1", workspace="w1")])
    store.append("session-s2", [ev("session.started", session_id="s2", workspace="w1")])
    store.append("session-s2", [ev("session.started", session_id="s2", workspace="w9")])  # a retry: the first wins
    store.append("session-s3", [ev("session.started", session_id="s3", workspace="w1")])
    run_all(store)
    store.append("session-s3", [ev("session.updated", session_id="s3", workspace="w2")])  # moved in a later batch
    store.append("session-s1", [ev("session.deleted", session_id="s1")])
    last = store.append("workspace-w1", [ev("workspace.updated", workspace_id="w1", name="renamed")])
    store.append("workspace-w1", [ev("workspace.archived", workspace_id="w1", reason="done")])
    Runner(store, batch_size=1).run_once()
    q = store.backend.query
    rows = q(
        "SELECT workspace_id, status, name, path, settings, session_count, live_session_count, created_at, "
        "updated_at, archived_at IS NOT NULL FROM workspaces ORDER BY workspace_id"
    )
    assert rows == [
        ("w1", "archived", "renamed", "/src/repo", '{"b":1}', 2, 1, created[0].recorded_at, last[0].recorded_at, True),
        ("w2", "unknown", None, None, None, 1, 1, None, None, False),  # named by a session, never created
    ]
    # the counts agree with the sessions model's workspace_id
    assert q(
        "SELECT workspace_id, count(*) FROM sessions WHERE workspace_id IS NOT NULL GROUP BY workspace_id "
        "ORDER BY workspace_id"
    ) == [("w1", 2), ("w2", 1)]
    newest = list(store.read_all())[-1]
    assert q("SELECT last_accessed_at, last_position FROM workspaces WHERE workspace_id = 'w1'") == [
        (newest.recorded_at, newest.position)
    ]


def test_a_retried_instance_counts_once_and_the_first_wins(store: EventStore) -> None:
    started = ev("instance.started", session_id="s1", instance_id="i1", agent_name="alice", runtime="codex")
    finished = ev(
        "instance.finished",
        session_id="s1",
        instance_id="i1",
        status="completed",
        files_changed=3,
        lines_added=40,
        lines_removed=2,
    )
    first = store.append(
        "session-s1",
        [
            ev("session.started", session_id="s1", kind="competition"),
            started,
            ev(
                "instance.started",
                session_id="s1",
                instance_id="i2",
                agent_name="bob",
                model="m",
                runtime="claude-code",
                worktree="/wt/bob",
                branch="bob/fix",
            ),
        ],
    )
    run_all(store)
    store.append("session-s1", [started, finished, finished])
    store.append("session-s1", [ev("instance.finished", session_id="s1", instance_id="i1", status="failed")])
    store.append("session-s2", [ev("instance.finished", session_id="s2", instance_id="i1", status="cancelled")])
    Runner(store, batch_size=2).run_once()
    q = store.backend.query
    assert q(
        "SELECT session_id, instance_id, agent_name, runtime, worktree, branch, status, files_changed, lines_added, "
        "lines_removed, started_at FROM instances ORDER BY session_id, instance_id"
    ) == [
        ("s1", "i1", "alice", "codex", None, None, "completed", 3, 40, 2, first[1].recorded_at),
        ("s1", "i2", "bob", "claude-code", "/wt/bob", "bob/fix", "running", None, None, None, first[2].recorded_at),
        ("s2", "i1", None, None, None, None, "cancelled", None, None, None, None),  # finished, never started
    ]


def test_session_complete_joins_a_session_with_its_workspace_instances_and_messages(store: EventStore) -> None:
    store.append("workspace-w1", [ev("workspace.created", workspace_id="w1", name="repo", path="/src/repo")])
    store.append(
        "session-s1",
        [
            ev("session.started", session_id="s1", kind="ensemble", workspace="w1"),
            ev("message.appended", session_id="s1", message_id="m1", role="user", content="go"),
            ev("message.appended", session_id="s1", message_id="m1", role="user", content="go"),  # a retry
            *[
                ev("instance.started", session_id="s1", instance_id=f"i{n}", agent_name=f"a{n}", runtime=rt)
                for n, rt in enumerate(["codex", "claude-code", "codex", None])
            ],
        ],
    )
    store.append("session-s2", [ev("session.started", session_id="s2")])
    runner = Runner(store)
    runner.run_once()
    sql = (
        "SELECT session_id, kind, workspace_id, workspace_name, workspace_path, message_count, instance_count, "
        "runtimes FROM session_complete ORDER BY session_id"
    )
    want = [
        ("s1", "ensemble", "w1", "repo", "/src/repo", 1, 4, "claude-code:1,codex:2"),
        ("s2", None, None, None, None, 0, 0, None),
    ]
    assert store.backend.query(sql) == want
    for name in ("sessions", "workspaces", "instances", "messages"):  # each rebuild swaps its tables under the view
        runner.rebuild(name)
        assert store.backend.query(sql) == want, name
    runner.rebuild_many(["sessions", "workspaces", "instances"])
    store.append("session-s2", [ev("instance.started", session_id="s2", instance_id="i0", agent_name="x")])
    runner.run_once()
    assert store.backend.query(sql)[1][6] == 1  # still live over the new generations


def test_agent_memory_holds_the_latest_value_until_deleted_or_expired(store: EventStore) -> None:
    store.append(
        "memory-alice",
        [
            ev("memory.set", agent="alice", key="goal", value={"text": "fix bug", "n": [1, 2]}),
            ev("memory.set", agent="alice", key="goal", value="ship it"),
            ev("memory.set", agent="alice", key="scratch", value=None),
            ev("memory.set", agent="alice", key="gone", value=1),
            ev("memory.deleted", agent="alice", key="gone"),
            ev("memory.set", agent="alice", key="stale", value=1, expires_at="2000-01-01T00:00:00.000000Z"),
        ],
    )
    soon = at(0.5)
    store.append("memory-bob", [ev("memory.set", agent="bob", key="lease", value=True, expires_at=soon)])
    run_all(store)
    q = store.backend.query
    mine = "SELECT agent, key, value, expires_at FROM agent_memory ORDER BY agent, key"
    assert q(mine) == [
        ("alice", "goal", '"ship it"', None),
        ("alice", "scratch", "null", None),  # a JSON null is a value
        ("bob", "lease", "true", soon),  # not expired as of the latest memory event
    ]
    time.sleep(0.6)
    store.append("memory-alice", [ev("memory.set", agent="alice", key="goal", value="later")])
    run_all(store)  # a memory event recorded after bob's expiry: the entry is gone
    assert q(mine) == [("alice", "goal", '"later"', None), ("alice", "scratch", "null", None)]
    Runner(store).rebuild("agent_memory")
    assert q(mine) == [("alice", "goal", '"later"', None), ("alice", "scratch", "null", None)]


@pytest.mark.parametrize(
    ("type", "data", "path"),
    [
        ("workspace.created", {"workspace_id": "", "name": "x"}, "$.data.workspace_id"),
        ("workspace.created", {"workspace_id": "w"}, "$.data"),
        ("instance.started", {"session_id": "s", "instance_id": "i", "agent_name": ""}, "$.data.agent_name"),
        ("instance.finished", {"session_id": "s", "instance_id": "i", "status": "ok"}, "$.data.status"),
        (
            "instance.finished",
            {"session_id": "s", "instance_id": "i", "status": "failed", "lines_added": -1},
            "$.data.lines_added",
        ),
        ("memory.set", {"agent": "a", "key": "k"}, "$.data"),
        ("memory.set", {"agent": "a", "key": "k", "value": 1, "expires_at": "tomorrow"}, "$.data.expires_at"),
        ("memory.deleted", {"agent": "a", "key": ""}, "$.data.key"),
    ],
)
def test_bad_entity_events_are_refused_with_the_path(type: str, data: dict[str, object], path: str) -> None:
    with EventStore.open(":memory:") as store:
        with pytest.raises(InvalidEvent, match=f"invalid '{type}' event: .* - at `{path.replace('$', '[$]')}`"):
            store.append("s", [NewEvent(type=type, data=data)])
        assert store.head()[0] == 0


QUERIES = [
    (
        "sessions",
        "SELECT session_id FROM sessions WHERE workspace_id = ? ORDER BY started_at",
        "sessions__g{}_workspace",
    ),
    ("instances", "SELECT * FROM instances WHERE session_id = ?", "instances__g{}"),
    ("agent_memory", "SELECT key, value FROM agent_memory WHERE agent = ?", "agent_memory__g{}"),
]


@pytest.mark.parametrize(("table", "sql", "index"), QUERIES, ids=[q[0] for q in QUERIES])
def test_main_queries_use_an_index(store: EventStore, table: str, sql: str, index: str) -> None:
    runner = Runner(store)
    generation = next(s.generation for s in runner.status() if s.name == table)
    index = index.format(generation)
    with store.backend.transaction() as tx:
        if store.backend.dialect == "sqlite":
            plan = " ".join(str(r[-1]) for r in tx.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",)))
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
        else:  # the planner would scan the empty table anyway: ask whether it can use an index at all
            tx.execute("SET LOCAL enable_seqscan = off")
            plan = " ".join(str(r[0]) for r in tx.execute(f"EXPLAIN {sql}", ("x",)))
            assert "Index" in plan, plan
    assert index in plan, plan


@pytest.mark.slow
def test_the_demo_fills_every_entity_model_and_the_view(tmp_path: Path) -> None:
    from eventstore import demo

    url = str(tmp_path / "demo.db")
    demo.run(url, agents=2, sessions=2, seed=3)
    with EventStore.open(url) as store:
        run_all(store)
        q = store.backend.query
        types = store.stats().types
        assert types["instance.started"] > q("SELECT count(*) FROM instances")[0][0] > 0  # retries counted once
        assert types["workspace.created"] > q("SELECT count(*) FROM workspaces WHERE created_at IS NOT NULL")[0][0]
        assert q("SELECT count(*) FROM workspaces WHERE status = 'archived'") == [(1,)]
        assert q("SELECT min(session_count) FROM workspaces WHERE status = 'active'") == [(2,)]
        assert q("SELECT count(*) FROM session_complete WHERE instance_count > 0 AND workspace_name IS NOT NULL")[0][0]
        assert q("SELECT count(*) FROM agent_memory")[0][0] > 0
        assert types["memory.deleted"] > 0 and q("SELECT count(*) FROM agent_memory WHERE key = 'stale-lease'") == [
            (0,)
        ]


def test_an_erased_memory_value_leaves_the_read_model(store: EventStore) -> None:
    store.append(
        "memory-alice",
        [NewEvent(type="memory.set", subject="user-7", data={"agent": "alice", "key": "phone", "value": "555-0101"})],
    )
    run_all(store)
    assert store.backend.query("SELECT value FROM agent_memory") == [('"555-0101"',)]
    store.erase("user-7", requested_by="dpo")
    run_all(store)  # the erasure makes the model rebuild itself
    assert store.backend.query("SELECT key, value FROM agent_memory") == [("phone", None)]
