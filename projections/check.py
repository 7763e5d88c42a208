"""Dangling references in the read models: evidence the log holds that points at nothing.

An audit log never drops an event because what it refers to is missing (a message for a
session that never started, a ``tool.finished`` without its ``tool.started``): the read
models keep such rows, marked (status ``unknown``, ``started_at`` NULL), and this check lists
them. ``eventstore project check`` prints them and exits 1 when there are any, so a pipeline
notices; nothing is changed or hidden. It reads the read models as of their checkpoints (run
``eventstore project run`` first to include the newest events).

Each check is one SQL query over the public read-model views (``CHECKS``; docs/events.md,
"Dangling references", lists the kinds); read models added later add their own entries.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventstore import EventStore

LIMIT = 1000
"""At most this many references listed per kind (``counts`` has every one)."""


class Dangling(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    session_id: str | None
    """None for an execution seen without its start (its session is named by the start)."""
    item_id: str | None = None
    """The message, execution, instance or workspace id, or the collision key, when the reference is one item."""
    detail: str


class CheckReport(msgspec.Struct, kw_only=True):
    ok: bool
    counts: dict[str, int]
    """Per kind, how many references dangle (0 for kinds checked and clean)."""
    dangling: list[Dangling]
    """The first ``LIMIT`` of each kind, in a stable order."""


_NOT_STARTED = "NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = {0}.session_id AND s.started_at IS NOT NULL)"
"""The row's session never started (or has no row yet: its read model is behind)."""

CHECKS: list[tuple[str, str, str]] = [
    (
        "session.never_started",
        "SELECT session_id, NULL, message_count, tool_calls FROM sessions WHERE started_at IS NULL ORDER BY session_id",
        "session referenced by {0} message(s) and {1} tool call(s) but never started (status unknown)",
    ),
    (
        "tool.finished_without_start",
        "SELECT session_id, execution_id, status, position FROM tool_executions WHERE started_at IS NULL "
        "ORDER BY session_id, execution_id",
        "tool.finished ({0}, position {1}) without a tool.started",
    ),
    (
        "tool.unknown_message",
        "SELECT t.session_id, t.execution_id, t.message_id, t.position FROM tool_executions t "
        "WHERE t.message_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m "
        "WHERE m.session_id = t.session_id AND m.message_id = t.message_id) ORDER BY t.session_id, t.execution_id",
        "tool execution names message {0!r}, which its session does not have (position {1})",
    ),
    (
        "message.unknown_parent",
        "SELECT c.session_id, c.message_id, c.parent_id, c.position FROM messages c "
        "WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages p "
        "WHERE p.session_id = c.session_id AND p.message_id = c.parent_id) ORDER BY c.session_id, c.message_id",
        "message's parent {0!r} is not a message of its session (position {1})",
    ),
    (
        "session.event_after_delete",
        "SELECT session_id, NULL, events_after_delete, deleted_position, last_position FROM sessions "
        "WHERE events_after_delete > 0 ORDER BY session_id",
        "{0} event(s) naming the session after its session.deleted at position {1} (its latest event: position {2})",
    ),
    (
        "instance.unknown_session",
        "SELECT i.session_id, i.instance_id, i.position FROM instances i WHERE "
        + _NOT_STARTED.format("i")
        + " ORDER BY i.session_id, i.instance_id",
        "instance of a session that never started (position {0})",
    ),
    (
        "instance.finished_without_start",
        "SELECT session_id, instance_id, status, position FROM instances WHERE started_at IS NULL "
        "ORDER BY session_id, instance_id",
        "instance.finished ({0}, position {1}) without an instance.started",
    ),
    (
        "execution.unknown_session",
        "SELECT x.session_id, x.execution_id, x.first_position FROM executions x WHERE x.session_id IS NOT NULL AND "
        + _NOT_STARTED.format("x")
        + " ORDER BY x.session_id, x.execution_id",
        "execution.started names a session that never started (position {0})",
    ),
    (
        "execution.finished_without_start",
        "SELECT session_id, execution_id, outcome, last_position FROM executions "
        "WHERE started_at IS NULL AND finished_at IS NOT NULL ORDER BY execution_id",
        "execution.finished ({0}) without an execution.started (latest position {1})",
    ),
    (
        "execution.metric_without_start",
        "SELECT session_id, execution_id, metric_count, last_position FROM executions "
        "WHERE started_at IS NULL AND metric_count > 0 ORDER BY execution_id",
        "{0} metric.recorded name an execution that never started (latest position {1})",
    ),
    (
        "collision.unknown_session",
        "SELECT c.session_id, c.collision_key, c.resource, c.position FROM collisions c "
        "WHERE c.session_id IS NOT NULL AND " + _NOT_STARTED.format("c") + " ORDER BY c.session_id, c.collision_key",
        "collision.detected on {0!r} names a session that never started (position {1})",
    ),
    (
        "metric.unknown_session",
        "SELECT session_id, NULL, metric_count, last_position FROM sessions "
        "WHERE started_at IS NULL AND metric_count > 0 ORDER BY session_id",
        "{0} metric.recorded name a session that never started (latest event of it at position {1})",
    ),
    (
        "workspace.never_created",
        "SELECT m.session_id, m.workspace_id, w.status FROM workspace_sessions m "
        "JOIN workspaces w ON w.workspace_id = m.workspace_id WHERE w.created_at IS NULL "
        "ORDER BY m.session_id, m.workspace_id",
        "the session's workspace was never created (status {0})",
    ),
]
"""(kind, query, detail): the query returns (session_id, item_id, *detail arguments)."""


def check(store: EventStore, *, limit: int = LIMIT) -> CheckReport:
    """Every dangling reference of the read models; read only."""
    q = store.backend.query
    counts: dict[str, int] = {}
    found: list[Dangling] = []
    for kind, sql, detail in CHECKS:
        rows: list[tuple[Any, ...]] = q(sql)
        counts[kind] = len(rows)
        found += [
            Dangling(kind=kind, session_id=r[0], item_id=r[1], detail=detail.format(*r[2:])) for r in rows[:limit]
        ]
    return CheckReport(ok=not found, counts=counts, dangling=found)
