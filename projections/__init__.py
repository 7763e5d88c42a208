"""Projector framework and the read models (docs/projections.md, docs/events.md).

Adding a read model is one new module with a ``Projection`` subclass, listed in
``all_projections``.
"""

from __future__ import annotations

from typing import Any

from eventstore import EventStore

from .agent_memory import AgentMemory
from .agents import Agents, agent_activity
from .base import Projection, Tables, View
from .collisions import Collisions
from .executions import Executions
from .instances import Instances
from .messages import Messages
from .metrics import Metrics
from .runner import ProjectionStatus, Runner
from .session_complete import SESSION_COMPLETE
from .sessions import Sessions
from .slo_violations import SloViolations
from .tool_executions import ToolExecutions
from .workspaces import Workspaces


def all_projections() -> list[Projection]:
    return [
        Sessions(),
        Messages(),
        ToolExecutions(),
        Metrics(),
        SloViolations(),
        # executions, collisions, agents
        Executions(),
        Collisions(),
        Agents(),
        # workspaces, instances, memory
        Workspaces(),
        Instances(),
        AgentMemory(),
    ]


def all_views() -> list[View]:
    """Views across read models (``projections.base.View``), kept by the runner."""
    return [
        # workspaces, instances, memory
        SESSION_COMPLETE,
    ]


def run_all(store: EventStore) -> dict[str, int]:
    """Catch every read model up to the head once (what ``project run`` does)."""
    runner = Runner(store)
    try:
        return runner.run_once()
    finally:
        runner.release()


def summary(store: EventStore) -> dict[str, Any]:
    """What the demo prints, read from the read models."""
    q = store.backend.query
    return {
        "sessions_by_status": dict(q("SELECT status, count(*) FROM sessions GROUP BY status ORDER BY status")),
        "sessions_deleted": q("SELECT count(*) FROM sessions WHERE deleted_at IS NOT NULL")[0][0],
        "sessions_never_started": q("SELECT count(*) FROM sessions WHERE started_at IS NULL")[0][0],
        "messages": q("SELECT count(*) FROM messages")[0][0],
        "tokens_used": q("SELECT coalesce(sum(tokens_used), 0) FROM sessions")[0][0],
        "tool_executions_by_status": dict(
            q("SELECT status, count(*) FROM tool_executions GROUP BY status ORDER BY status")
        ),
        "tool_failures_by_tool": dict(
            q(
                "SELECT tool_name, count(*) FROM tool_executions WHERE status <> "
                "'completed' AND status <> 'started' GROUP BY tool_name ORDER BY tool_name"
            )
        ),
        "slo_breaches": [
            dict(zip(("slo_id", "severity", "observed", "threshold", "position"), r))
            for r in q("SELECT slo_id, severity, observed, threshold, position FROM slo_violations ORDER BY position")
        ],
        "metrics": [
            dict(zip(("metric", "stage", "count", "p50", "p95", "p99"), r))
            for r in q("SELECT metric, stage, count, p50, p95, p99 FROM metrics ORDER BY metric, stage")
        ],
        # executions, collisions, agents
        "executions_by_status": dict(q("SELECT status, count(*) FROM executions GROUP BY status ORDER BY status")),
        "collisions_by_kind": dict(q("SELECT kind, count(*) FROM collisions GROUP BY kind ORDER BY kind")),
        "agents": q("SELECT count(*) FROM agents")[0][0],
        # workspaces, instances, memory
        "workspaces": [
            dict(zip(("workspace_id", "status", "sessions", "live_sessions"), r))
            for r in q(
                "SELECT workspace_id, status, session_count, live_session_count FROM workspaces ORDER BY workspace_id"
            )
        ],
        "instances_by_status": dict(q("SELECT status, count(*) FROM instances GROUP BY status ORDER BY status")),
        "sessions_by_runtime_mix": dict(
            q(
                "SELECT coalesce(runtimes, ''), count(*) FROM session_complete WHERE instance_count > 0 "
                "GROUP BY runtimes ORDER BY runtimes"
            )
        ),
        "memory_entries_by_agent": dict(q("SELECT agent, count(*) FROM agent_memory GROUP BY agent ORDER BY agent")),
    }


__all__ = [
    # executions, collisions, agents
    "Agents",
    "Collisions",
    "Executions",
    "agent_activity",
    # (the rest)
    "AgentMemory",
    "Instances",
    "Messages",
    "Metrics",
    "Projection",
    "ProjectionStatus",
    "Runner",
    "Sessions",
    "SloViolations",
    "Tables",
    "ToolExecutions",
    "View",
    "Workspaces",
    "all_projections",
    "all_views",
    "run_all",
    "summary",
]
