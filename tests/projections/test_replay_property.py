"""Hypothesis: live projection, interleaved with appends in any way, equals a rebuild from scratch;
and with agents' retries mixed in, the read models' counts equal a plain Python model's."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from eventstore import EventStore, NewEvent, codec
from projections import Runner, Sessions

from .helpers import PAST, append_all, dump, scenario, with_retries


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    batch=st.integers(1, 50),
    retry=st.sampled_from([0.0, 0.3]),
)
def test_live_projection_equals_rebuild(seed: int, n: int, cuts: list[int], batch: int, retry: float) -> None:
    rng = random.Random(seed)
    events = with_retries(rng, scenario(rng, n), retry)
    bounds = sorted({min(c, len(events)) for c in cuts} | {0, len(events)})
    with tempfile.TemporaryDirectory() as d:
        with EventStore.open(Path(d) / "p.db", durability="process") as store:
            live = Runner(store, batch_size=batch)
            for a, b in zip(bounds, bounds[1:]):
                append_all(store, events[a:b])
                live.run_once()  # a catch-up step between appends
            live.run_once()
            live_rows = dump(store)
            assert all(s.lag == 0 and s.state == "caught up" for s in live.status())
            for p in live.projections:
                live.rebuild(p.name)
            assert dump(store) == live_rows
        # and a fresh store fed the same events in one go agrees too
        with EventStore.open(Path(d) / "q.db", durability="process") as other:
            append_all(other, events)
            Runner(other, batch_size=1000).run_once()
            fresh = dump(other)
        # recorded_at differs between the two stores; compare everything else
        assert {t: len(r) for t, r in fresh.items()} == {t: len(r) for t, r in live_rows.items()}


def model(events: list[tuple[str, NewEvent]]) -> dict[str, Any]:
    """What the read models must hold, computed the obvious way: ids are identities, first wins."""
    sessions: dict[str, dict[str, Any]] = {}
    messages: dict[tuple[str, str], tuple[Any, ...]] = {}
    tools: dict[tuple[str, str], dict[str, Any]] = {}
    ent = _EntityModel()  # workspaces, instances, memory
    for _, ev in events:
        d = ev.data
        ent.feed(ev)
        if "session_id" not in d or d["session_id"] is None or ev.type not in Sessions.types:
            continue
        sid = d["session_id"]
        s = sessions.setdefault(
            sid, {"status": "unknown", "started": False, "deleted": False, "name": None, "agents": set(), "metrics": 0}
        )
        if s["deleted"] and ev.type != "session.deleted":
            s["after_delete"] = s.get("after_delete", 0) + 1
        meta = ev.metadata or {}
        writer = meta.get("principal") or meta.get("agent_id")
        if writer:
            s["agents"].add(writer)
        if ev.type in ("session.updated", "session.status_changed", "session.deleted"):
            if writer and s.get("starter") not in (None, writer):  # a change by another than the starter
                s["others"] = s.get("others", 0) + 1
        if ev.type == "session.started" and not s["started"]:
            s["started"] = True
            s["starter"] = writer or None
            if s["status"] == "unknown":
                s["status"] = "active"
        elif ev.type == "session.status_changed":
            s["status"] = d["status"]
        elif ev.type == "session.updated" and d.get("name") is not None:
            s["name"] = d["name"]
        elif ev.type == "session.deleted":
            s["deleted"] = True
        elif ev.type == "metric.recorded":
            s["metrics"] += 1
        elif ev.type == "message.appended":
            messages.setdefault((sid, d["message_id"]), (d["content"], d.get("tokens_used")))
        elif ev.type in ("tool.started", "tool.finished"):
            t = tools.setdefault((sid, d["execution_id"]), {"started": False, "status": "started"})
            if ev.type == "tool.started":
                t["started"] = True
            elif t["status"] == "started":
                t["status"] = d["status"]
    rows = {}
    for sid, s in sessions.items():
        mine = [m for k, m in messages.items() if k[0] == sid]
        runs = [t for k, t in tools.items() if k[0] == sid]
        rows[sid] = (
            s["status"],
            s["name"],
            len(mine),
            sum(m[1] or 0 for m in mine),
            len(runs),  # a call counts by its start or by a finish without one
            sum(t["status"] in ("failed", "timeout") for t in runs),
            s["started"],
            s["deleted"],
            len(s["agents"]),
            s["metrics"],
            s.get("after_delete", 0),
            s.get("starter"),
            s.get("others", 0),
        )
    return {
        "sessions": rows,
        "messages": {k: v for k, v in messages.items()},
        "tools": {k: t["status"] for k, t in tools.items()},
        **ent.rows(),
    }


class _EntityModel:
    """The rules of docs/events.md for workspaces, instances and memory, the obvious way."""

    def __init__(self) -> None:
        self.workspaces: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, Any]] = {}  # session -> workspace, started, deleted
        self.instances: dict[tuple[str, str], dict[str, Any]] = {}
        self.memory: dict[tuple[str, str], tuple[Any, ...] | None] = {}

    def ws(self, wid: str) -> dict[str, Any]:
        return self.workspaces.setdefault(wid, {"status": "unknown", "name": None, "created": False})

    def feed(self, ev: NewEvent) -> None:
        d, t = ev.data, ev.type
        if t.startswith("session."):
            m = self.members.setdefault(d["session_id"], {"w": None, "started": False, "deleted": False})
            if t == "session.deleted":
                m["deleted"] = True
            elif t == "session.updated" or not m["started"]:
                m["started"] = m["started"] or t == "session.started"
                if d.get("workspace") is not None:
                    self.ws(d["workspace"])
                    m["w"] = d["workspace"]
        elif t == "workspace.created":
            w = self.ws(d["workspace_id"])
            if not w["created"]:
                w.update(created=True, name=d["name"], status="active" if w["status"] == "unknown" else w["status"])
        elif t == "workspace.updated":
            w = self.ws(d["workspace_id"])
            w["name"] = d.get("name") or w["name"]
        elif t == "workspace.archived":
            self.ws(d["workspace_id"])["status"] = "archived"
        elif t.startswith("instance."):
            i = self.instances.setdefault((d["session_id"], d["instance_id"]), {"agent": None, "status": "running"})
            if t == "instance.started" and "started" not in i:
                i.update(started=True, agent=d["agent_name"], runtime=d.get("runtime"))
            elif t == "instance.finished" and "finished" not in i:
                i.update(finished=True, status=d["status"])
        elif t == "memory.set":
            live = d.get("expires_at") != PAST
            self.memory[(d["agent"], d["key"])] = (
                (codec.encode(d["value"]).decode(), d.get("expires_at")) if live else None
            )
        elif t == "memory.deleted":
            self.memory[(d["agent"], d["key"])] = None

    def rows(self) -> dict[str, Any]:
        counts = {w: [0, 0] for w in self.workspaces}
        for m in self.members.values():
            if m["w"] is not None:
                counts[m["w"]][0] += 1
                counts[m["w"]][1] += not m["deleted"]
        return {
            "workspaces": {w: (v["status"], v["name"], *counts[w]) for w, v in self.workspaces.items()},
            "session_workspace": {s: m["w"] for s, m in self.members.items()},
            "instances": {k: (v["agent"], v["status"]) for k, v in self.instances.items()},
            "memory": {k: v for k, v in self.memory.items() if v is not None},
        }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(0, 80), batch=st.integers(1, 30), retry=st.floats(0.0, 0.6))
def test_counts_with_retries_equal_the_model(seed: int, n: int, batch: int, retry: float) -> None:
    rng = random.Random(seed)
    events = with_retries(rng, scenario(rng, n), retry)
    want = model(events)
    with EventStore.open(":memory:", durability="process") as store:
        half = len(events) // 2
        runner = Runner(store, batch_size=batch)
        append_all(store, events[:half])
        runner.run_once()  # retries of the first half arrive in later batches
        append_all(store, events[half:])
        runner.run_once()
        q = store.backend.query
        got = {
            r[0]: (r[1], r[2], r[3], r[4], r[5], r[6], r[7] is not None, r[8] is not None, *r[9:])
            for r in q(
                "SELECT session_id, status, name, message_count, tokens_used, tool_calls, tool_failures, "
                "started_at, deleted_at, agent_count, metric_count, events_after_delete, started_by, "
                "changes_by_others FROM sessions"
            )
        }
        assert got == want["sessions"]
        assert {
            (r[0], r[1]): (r[2], r[3]) for r in q("SELECT session_id, message_id, content, tokens_used FROM messages")
        } == want["messages"]
        assert {(r[0], r[1]): r[2] for r in q("SELECT session_id, execution_id, status FROM tool_executions")} == want[
            "tools"
        ]
        # executions, collisions, agents
        want2 = model_executions_agents(events)
        assert {
            r[0]: r[1:] for r in q("SELECT execution_id, workflow, agent_id, status, metric_count FROM executions")
        } == want2["executions"]
        assert {
            (r[0], r[1], r[2]): r[3] for r in q("SELECT execution_id, stage, metric, count FROM execution_stages")
        } == (want2["stages"])
        assert q("SELECT count(*) FROM collisions")[0][0] == want2["collisions"]
        assert {
            r[0]: r[1:]
            for r in q("SELECT agent, events, sessions, messages, tokens_used, tool_calls, tool_failures FROM agents")
        } == want2["agents"]
        assert q("SELECT count(*) FROM agent_events")[0][0] == sum(a[0] for a in want2["agents"].values())

        # workspaces, instances, memory
        assert {
            r[0]: r[1:]
            for r in q("SELECT workspace_id, status, name, session_count, live_session_count FROM workspaces")
        } == want["workspaces"]
        got_ws = {r[0]: r[1] for r in q("SELECT session_id, workspace_id FROM sessions")}
        assert got_ws == {s: want["session_workspace"].get(s) for s in want["sessions"]}
        assert {
            (r[0], r[1]): r[2:] for r in q("SELECT session_id, instance_id, agent_name, status FROM instances")
        } == (want["instances"])
        n = {r[0]: r[1] for r in q("SELECT session_id, instance_count FROM session_complete")}
        assert n == {s: sum(k[0] == s for k in want["instances"]) for s in want["sessions"]}
        assert {(r[0], r[1]): r[2:] for r in q("SELECT agent, key, value, expires_at FROM agent_memory")} == want[
            "memory"
        ]


def model_executions_agents(events: list[tuple[str, NewEvent]]) -> dict[str, Any]:
    """The executions, collisions and agents read models, computed the obvious way."""
    executions: dict[str, list[Any]] = {}
    stages: dict[tuple[str, str, str], int] = {}
    collision_ids: set[str] = set()
    anonymous_collisions = 0
    agents: dict[str, dict[str, Any]] = {}
    items: set[tuple[str, str, str]] = set()
    for _, ev in events:
        d, meta = ev.data, ev.metadata or {}
        if ev.type in ("execution.started", "execution.finished") or (
            ev.type == "metric.recorded" and d.get("execution_id")
        ):
            # workflow, agent, status, metrics, started, outcome of the first finish
            x = executions.setdefault(d["execution_id"], [None, None, "unknown", 0, False, None])
            if ev.type == "execution.started" and not x[4]:
                x[4] = True
                x[0], x[1] = d["workflow"], meta.get("principal") or d.get("agent_id") or meta.get("agent_id")
                x[2] = x[5] or "running"
            elif ev.type == "execution.finished" and x[5] is None:
                x[5] = d["outcome"]
                x[2] = d["outcome"] if x[4] else "unknown"  # a finish without its start stays unknown
            elif ev.type == "metric.recorded":
                x[3] += 1
                key = (d["execution_id"], d.get("stage") or "", d["metric"])
                stages[key] = stages.get(key, 0) + 1
        elif ev.type == "collision.detected":
            if d.get("collision_id"):
                collision_ids.add(d["collision_id"])
            else:
                anonymous_collisions += 1
        agent = meta.get("principal") or meta.get("agent_id")
        if not agent:
            continue
        a = agents.setdefault(agent, {"events": 0, "sessions": set(), "m": 0, "tokens": 0, "s": 0, "f": 0})
        a["events"] += 1
        sid = d.get("session_id")
        if not isinstance(sid, str):
            continue
        a["sessions"].add(sid)
        kind = {"message.appended": "m", "tool.started": "s", "tool.finished": "f"}.get(ev.type)
        if kind is None:
            continue
        item = (kind, d["message_id"] if kind == "m" else d["execution_id"], sid)
        if item in items:
            continue
        items.add(item)
        if kind == "m":
            a["m"] += 1
            a["tokens"] += d.get("tokens_used") or 0
        else:
            if ("f" if kind == "s" else "s", item[1], sid) not in items:
                a["s"] += 1
            if kind == "f" and d["status"] != "completed":
                a["f"] += 1
    return {
        "executions": {k: tuple(v[:4]) for k, v in executions.items()},
        "stages": stages,
        "collisions": len(collision_ids) + anonymous_collisions,
        "agents": {
            k: (a["events"], len(a["sessions"]), a["m"], a["tokens"], a["s"], a["f"]) for k, a in agents.items()
        },
    }
