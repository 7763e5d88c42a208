"""Event generators and table dumps shared by the projection tests."""

from __future__ import annotations

import random
from typing import Any

from eventstore import EventStore, NewEvent

TABLES = [
    "sessions",
    "session_items",
    "session_agents",
    "messages",
    "tool_executions",
    "metrics",
    "slos",
    "slo_violations",
    # executions, collisions, agents
    "executions",
    "execution_stages",
    "recent_executions",
    "agent_performance_summary",
    "pipeline_stage_performance",
    "collisions",
    "agents",
    "agent_events",
    "agent_sessions",
    "agent_items",
]
# workspaces, instances, memory
TABLES += ["workspaces", "workspace_sessions", "instances", "agent_memory", "agent_memory_clock", "session_complete"]

PAST, FUTURE = "2000-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"
"""Memory expiries before and after any recorded_at: expired at once, never expired."""


def dump(store: EventStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row, in a stable order."""
    return {t: sorted(store.backend.query(f"SELECT * FROM {t}"), key=repr) for t in TABLES}


def scenario(rng: random.Random, n: int) -> list[tuple[str, NewEvent]]:
    """A plausible stream of catalogue events over a few sessions (deterministic per rng)."""
    out: list[tuple[str, NewEvent]] = []
    out.append(
        (
            "slo-a",
            NewEvent(
                type="slo.defined",
                data={
                    "slo_id": "lat",
                    "metric": "latency",
                    "objective": rng.choice(["p50", "p95", "p99", "max", "mean"]),
                    "threshold": 50.0,
                    "severity": "warning",
                    "window": 5,
                },
            ),
        )
    )
    for i in range(n):
        s = f"s{rng.randint(0, 3)}"
        if rng.random() < 0.25:  # executions, collisions, agents
            out.append((f"session-{s}", _execution_or_collision(rng, s, i, n)))
            continue
        kind = rng.random()
        if kind < 0.12:
            ev = NewEvent(
                type="session.started",
                data={"session_id": s, "model": rng.choice(["m1", "m2"]), "workspace": rng.choice([None, "w0", "w1"])},
            )
        elif kind < 0.15:
            if rng.random() < 0.7:
                ev = NewEvent(
                    type="session.updated",
                    data={
                        "session_id": s,
                        "name": f"n{i}",
                        "settings": rng.choice([None, {"t": i}]),
                        "workspace": rng.choice([None, None, "w0", "w1", "w2"]),
                    },
                )
            else:
                ev = NewEvent(type="session.deleted", data={"session_id": s})
        elif kind < 0.25:
            ev = NewEvent(
                type="session.status_changed",
                data={"session_id": s, "status": rng.choice(["active", "paused", "completed", "failed"])},
            )
        elif kind < 0.5:
            ev = NewEvent(
                type="message.appended",
                data={
                    "session_id": s,
                    "message_id": f"m{rng.randint(0, n)}",
                    "role": rng.choice(["user", "assistant"]),
                    "content": f"text {i}",
                    "tokens_used": rng.choice([None, rng.randint(0, 100)]),
                },
            )
        elif kind < 0.65:
            ev = NewEvent(
                type="tool.started",
                data={
                    "session_id": s,
                    "execution_id": f"x{rng.randint(0, n // 2)}",
                    "tool_name": rng.choice(["a", "b"]),
                    "input": {"q": i},
                },
            )
        elif kind < 0.8:
            ev = NewEvent(
                type="tool.finished",
                data={
                    "session_id": s,
                    "execution_id": f"x{rng.randint(0, n // 2)}",
                    "status": rng.choice(["completed", "failed", "timeout"]),
                    "output": {"r": i},
                    "duration_ms": float(rng.randint(1, 100)),
                    "retry_count": rng.randint(0, 2),
                },
            )
        elif kind >= 0.84:
            ev = _entity_event(rng, s, i)
        else:
            ev = NewEvent(
                type="metric.recorded",
                data={
                    "metric": rng.choice(["latency", "cost"]),
                    "value": rng.uniform(0, 100),
                    "stage": rng.choice([None, "gen", "tool"]),
                    "session_id": rng.choice([None, s, "s-metrics-only"]),
                },
            )
        out.append((f"session-{s}", _attributed(rng, ev)))
    return out


# executions, collisions, agents
AGENTS = ("a1", "a2", "a3")


def _attributed(rng: random.Random, ev: NewEvent) -> NewEvent:
    """``ev`` written by a random agent: ``agent_id``, a service ``principal`` (which wins), or none."""
    roll = rng.random()
    if roll < 0.15:
        return ev
    meta: dict[str, Any] = {"agent_id": rng.choice(AGENTS)}
    if roll > 0.85:
        meta["principal"] = rng.choice(AGENTS)
    return NewEvent(type=ev.type, data=ev.data, metadata=meta)


def _execution_or_collision(rng: random.Random, s: str, i: int, n: int) -> NewEvent:
    x = f"e{rng.randint(0, max(1, n // 6))}"
    kind = rng.random()
    if kind < 0.3:
        ev = NewEvent(
            type="execution.started",
            data={
                "execution_id": x,
                "workflow": rng.choice(["triage", "deploy"]),
                "kind": rng.choice([None, "pipeline"]),
                "session_id": s,
                "agent_id": rng.choice([None, "a1", "a9"]),
            },
        )
    elif kind < 0.55:
        ev = NewEvent(
            type="execution.finished",
            data={
                "execution_id": x,
                "outcome": rng.choice(["succeeded", "failed", "timeout"]),
                "duration_ms": rng.choice([None, float(rng.randint(1, 500))]),
            },
        )
    elif kind < 0.85:
        ev = NewEvent(
            type="metric.recorded",
            data={
                "metric": "latency",
                "value": float(rng.randint(0, 100)),
                "stage": rng.choice([None, "plan", "act"]),
                "execution_id": x,
            },
        )
    else:
        ev = NewEvent(
            type="collision.detected",
            data={
                "resource": rng.choice(["file:a.py", "stream:x"]),
                "kind": "write",
                "agents": rng.sample(AGENTS, 2),
                "session_id": s,
                "resolution": rng.choice([None, "retried"]),
                "collision_id": rng.choice([None, f"c{i % 3}"]),
            },
        )
    return _attributed(rng, ev)


def _entity_event(rng: random.Random, s: str, i: int) -> NewEvent:
    """A workspace, instance or memory event (workspaces, instances, memory)."""
    kind = rng.random()
    w = f"w{rng.randint(0, 2)}"
    if kind < 0.12:
        return NewEvent(type="workspace.created", data={"workspace_id": w, "name": f"ws{i}", "path": f"/src/{i}"})
    if kind < 0.2:
        return NewEvent(type="workspace.updated", data={"workspace_id": w, "settings": {"i": i}})
    if kind < 0.25:
        return NewEvent(type="workspace.archived", data={"workspace_id": w})
    if kind < 0.45:
        return NewEvent(
            type="instance.started",
            data={
                "session_id": s,
                "instance_id": f"i{rng.randint(0, 1)}",
                "agent_name": rng.choice(["alice", "bob"]),
                "runtime": rng.choice([None, "codex", "claude-code"]),
                "branch": f"b{i}",
            },
        )
    if kind < 0.6:
        return NewEvent(
            type="instance.finished",
            data={
                "session_id": s,
                "instance_id": f"i{rng.randint(0, 1)}",
                "status": rng.choice(["completed", "failed", "cancelled"]),
                "lines_added": rng.randint(0, 50),
            },
        )
    agent, key = rng.choice(["alice", "bob"]), rng.choice(["k0", "k1", "k2"])
    if kind < 0.9:
        return NewEvent(
            type="memory.set",
            data={
                "agent": agent,
                "key": key,
                "value": rng.choice([None, i, {"v": i}]),
                "expires_at": rng.choice([None, PAST, FUTURE]),
            },
        )
    return NewEvent(type="memory.deleted", data={"agent": agent, "key": key})


RETRIED = (
    "session.started",
    "session.deleted",
    "message.appended",
    "tool.started",
    "tool.finished",
    # executions, collisions, agents
    "execution.started",
    "execution.finished",
    "collision.detected",
)
RETRIED += ("workspace.created", "workspace.archived", "instance.started", "instance.finished", "memory.set")
"""Event types whose ids are identities: a copy of one is an agent's retry (docs/events.md)."""


CHANGED = {
    "session.started": {"model": "m9", "workspace": "w2", "name": "retried"},
    "session.deleted": {"reason": "retried"},
    "message.appended": {"content": "retried", "tokens_used": 999, "role": "system"},
    "tool.started": {"tool_name": "z", "input": {"retried": True}},
    "tool.finished": {"status": "timeout", "output": {"retried": True}},
    "execution.started": {"workflow": "retried", "agent_id": "a9"},
    "execution.finished": {"outcome": "cancelled"},
    "collision.detected": {"resource": "file:retried.py"},
    "workspace.created": {"name": "retried", "path": "/retried"},
    "workspace.archived": {"reason": "retried"},
    "instance.started": {"agent_name": "carol", "runtime": "aider"},
    "instance.finished": {"status": "cancelled", "lines_added": 7},
    "memory.set": {"value": "retried"},
}
"""Per retried type, other values for the fields that are not its identity: a retry re-rendered
by the agent, which the read models must ignore (the first wins; for memory, the latest)."""


def with_retries(rng: random.Random, events: list[tuple[str, NewEvent]], p: float) -> list[tuple[str, NewEvent]]:
    """``events`` with each id-bearing event re-sent later with probability ``p``, possibly several
    times, as an agent that did not see its acknowledgement would: an exact copy, or (one time in
    three) the same identity with other values in its other fields."""
    out = list(events)
    for stream, ev in events:
        while ev.type in RETRIED and rng.random() < p:
            again = ev
            if rng.random() < 1 / 3:
                again = NewEvent(type=ev.type, data=ev.data | CHANGED[ev.type], metadata=ev.metadata)
            out.insert(rng.randint(out.index((stream, ev)) + 1, len(out)), (stream, again))
    return out


def append_all(store: EventStore, events: list[tuple[str, NewEvent]]) -> None:
    for stream, ev in events:
        store.append(stream, [ev])
