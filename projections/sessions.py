"""Read model ``sessions``: one row per session, its status, settings and running counts.

Every event that names a session makes its row, the ``instance.*``, ``execution.started``,
``collision.detected`` and ``metric.recorded`` that only refer to it included: a session that
never started is then shown (status ``unknown``) wherever it is referred to, not only by messages.

Ids are identities: a repeated ``message.appended`` (same session and ``message_id``),
``tool.started`` or ``tool.finished`` (same session and ``execution_id``) or ``session.started``
counts once, as its first occurrence (docs/events.md, "Repeated events"). Which ids were already
counted is kept in ``session_items``, so a retry arriving in a later batch is still recognised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from eventstore.records import RecordedEvent, agent_of

from .base import Projection, Tables, json_text

COLUMNS = (
    "session_id",
    "status",
    "name",
    "task",
    "kind",
    "model",
    "temperature",
    "max_tokens",
    "settings",
    "workspace_id",
    "message_count",
    "tokens_used",
    "tool_calls",
    "tool_failures",
    "agent_count",
    "metric_count",
    "started_at",
    "updated_at",
    "completed_at",
    "deleted_at",
    "deleted_position",
    "events_after_delete",
    "started_by",
    "changes_by_others",
    "last_position",
)

_LIFECYCLE = frozenset({"session.updated", "session.status_changed", "session.deleted"})
"""Events that change a session's row as a whole: ``changes_by_others`` counts those by writers
other than the one that started it (docs/projections.md, "What read models trust")."""

_EDITABLE = ("name", "task", "kind", "model", "temperature", "max_tokens")
"""Fields copied as given from ``session.started`` / ``session.updated`` (``kind`` only from the former)."""

_ITEM_KIND = {"message.appended": "m", "tool.started": "s", "tool.finished": "f"}
"""``session_items.kind`` per event type: what an id was counted for."""
_OTHER = {"s": "f", "f": "s"}


_ENDED = ("completed", "failed")

STREAM_PREFIX = "session-"
"""The catalogue's stream convention, ``session-<session_id>`` (docs/events.md, "Streams")."""


def unpruned(e: RecordedEvent) -> RecordedEvent | None:
    """A pruned ``session.started`` as a start without fields, its session named by its stream
    (``session-<id>``): the session did start, only what it said is gone. None when the
    stream does not name a session; other events are returned as they are."""
    if not e.pruned:
        return e
    sid = e.stream_id.removeprefix(STREAM_PREFIX)
    if e.type != "session.started" or sid == e.stream_id or not sid:
        return None
    return msgspec.structs.replace(e, data={"session_id": sid})


class Sessions(Projection):
    name = "sessions"
    version = 9  # 3: indexes by status, kind, workspace and time; settings as jsonb on PostgreSQL; 4: agent_count;
    # 5: a row for every session an event names (instances, executions, collisions, metrics), metric_count;
    # 6: deleted_position, events_after_delete; 7: a pruned session.started still starts its session;
    # 8: tool_calls counts a call seen only by its tool.finished; 9: started_by, changes_by_others
    tables = ("sessions", "session_items", "session_agents")
    personal = True
    types = frozenset(
        {
            "session.started",
            "session.updated",
            "session.deleted",
            "session.status_changed",
            "message.appended",
            "tool.started",
            "tool.finished",
            # Events that only name a session: they make its row (status unknown until it starts).
            "instance.started",
            "instance.finished",
            "execution.started",
            "collision.detected",
            "metric.recorded",
        }
    )
    pruned_types = frozenset({"session.started"})  # a start whose payload retention removed still counts
    ddl = """
    CREATE TABLE {sessions} (
        session_id    TEXT PRIMARY KEY,
        status        TEXT NOT NULL,
        name          TEXT,
        task          TEXT,
        kind          TEXT,
        model         TEXT,
        temperature   DOUBLE PRECISION,
        max_tokens    BIGINT,
        settings      {json},
        workspace_id  TEXT,
        message_count BIGINT NOT NULL,
        tokens_used   BIGINT NOT NULL,
        tool_calls    BIGINT NOT NULL,
        tool_failures BIGINT NOT NULL,
        agent_count   BIGINT NOT NULL,
        metric_count  BIGINT NOT NULL,
        started_at    TEXT,
        updated_at    TEXT NOT NULL,
        completed_at  TEXT,
        deleted_at    TEXT,
        deleted_position    BIGINT,
        events_after_delete BIGINT NOT NULL,
        started_by    TEXT,
        changes_by_others BIGINT NOT NULL,
        last_position BIGINT NOT NULL
    );
    CREATE INDEX {sessions}_status ON {sessions} (status, started_at);
    CREATE INDEX {sessions}_kind ON {sessions} (kind, started_at);
    CREATE INDEX {sessions}_started ON {sessions} (started_at);
    CREATE INDEX {sessions}_workspace ON {sessions} (workspace_id, started_at);
    CREATE INDEX {sessions}_live ON {sessions} (deleted_at);
    CREATE TABLE {session_agents} (
        session_id TEXT NOT NULL,
        agent      TEXT NOT NULL,
        PRIMARY KEY (session_id, agent)
    ) {keyed};
    CREATE TABLE {session_items} (
        kind       TEXT NOT NULL,
        item_id    TEXT NOT NULL,
        session_id TEXT NOT NULL,
        PRIMARY KEY (kind, item_id, session_id)
    ) {keyed}
    """
    ddl_postgres = """
    CREATE INDEX {sessions}_settings ON {sessions} USING GIN (settings jsonb_path_ops)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        if any(e.pruned for e in events):
            events = [u for e in events if (u := unpruned(e)) is not None]
        events = [e for e in events if e.data.get("session_id") is not None]  # optional in some types
        if not events:
            return
        keys = sorted({e.data["session_id"] for e in events})
        rows: dict[str, dict[str, Any]] = {
            r[0]: dict(zip(COLUMNS, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(COLUMNS) + " FROM {sessions} WHERE session_id IN ({keys})", keys
            )
        }
        seen = self._seen(events, db)
        new_items: list[tuple[str, str, str]] = []
        writers = [agent_of(e.metadata) for e in events]  # the agents taking part: session_agents
        with_agent = sorted({e.data["session_id"] for e, a in zip(events, writers) if a is not None})
        agents: set[tuple[str, str]] = {
            (r[0], r[1])
            for r in db.fetch_by_keys(
                "SELECT session_id, agent FROM {session_agents} WHERE session_id IN ({keys})", with_agent
            )
        }
        new_agents: list[tuple[str, str]] = []
        for e, agent in zip(events, writers):
            d = e.data
            sid = d["session_id"]
            row = rows.get(sid)
            if row is None:  # first reference: 'unknown' until its session.started
                row = rows[sid] = {c: None for c in COLUMNS} | {
                    "session_id": sid,
                    "status": "unknown",
                    "message_count": 0,
                    "tokens_used": 0,
                    "tool_calls": 0,
                    "tool_failures": 0,
                    "agent_count": 0,
                    "metric_count": 0,
                    "events_after_delete": 0,
                    "changes_by_others": 0,
                }
            if agent is not None and (sid, agent) not in agents:  # a new participant
                agents.add((sid, agent))
                new_agents.append((sid, agent))
                row["agent_count"] += 1
            t = e.type
            if row["deleted_position"] is not None and t != "session.deleted":
                row["events_after_delete"] += 1  # by log position: exact even within one append
            kind = _ITEM_KIND.get(t)
            if kind is not None:
                item = (kind, d["message_id"] if kind == "m" else d["execution_id"], sid)
                if item in seen:  # a retry: already counted
                    kind = None
                else:
                    seen.add(item)
                    new_items.append(item)
            if t in _LIFECYCLE and agent is not None and row["started_by"] not in (None, agent):
                row["changes_by_others"] += 1  # evidence, not a refusal: it still applies below
            if t == "message.appended":
                if kind is not None:
                    row["message_count"] += 1
                    row["tokens_used"] += d.get("tokens_used") or 0
                    if d.get("model") and row["model"] is None:
                        row["model"] = d["model"]
            elif t == "tool.started" or t == "tool.finished":
                if kind is not None:
                    # a call counts once, by its start or by a finish seen without one, so
                    # tool_failures never exceeds tool_calls
                    if (_OTHER[kind], item[1], sid) not in seen:
                        row["tool_calls"] += 1
                    if kind == "f" and d["status"] != "completed":
                        row["tool_failures"] += 1
            elif t == "session.started":
                if row["started_at"] is None:  # the first session.started wins; repeats change nothing
                    self._edit(row, d)
                    row["started_at"] = e.recorded_at
                    row["started_by"] = agent
                    if row["status"] == "unknown":
                        row["status"] = "active"
            elif t == "session.status_changed":
                row["status"] = d["status"]
                row["completed_at"] = e.recorded_at if d["status"] in _ENDED else None
            elif t == "session.updated":
                self._edit(row, d)
            elif t == "session.deleted":
                if row["deleted_at"] is None:
                    row["deleted_at"] = e.recorded_at
                    row["deleted_position"] = e.position
            elif t == "metric.recorded":
                row["metric_count"] += 1
            row["updated_at"] = e.recorded_at
            row["last_position"] = e.position
        db.executemany(
            "INSERT INTO {session_items} (kind, item_id, session_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            new_items,
        )
        db.executemany("INSERT INTO {session_agents} (session_id, agent) VALUES (?, ?)", new_agents)
        db.upsert("sessions", COLUMNS, ("session_id",), [tuple(r[c] for c in COLUMNS) for r in rows.values()])

    @staticmethod
    def _edit(row: dict[str, Any], d: dict[str, Any]) -> None:
        """Copy the fields an event gives (absent or null: unchanged)."""
        for f in _EDITABLE:
            if d.get(f) is not None:
                row[f] = d[f]
        if d.get("settings") is not None:
            row["settings"] = json_text(d["settings"])
        if d.get("workspace") is not None:
            row["workspace_id"] = d["workspace"]

    @staticmethod
    def _seen(events: Sequence[RecordedEvent], db: Tables) -> set[tuple[str, str, str]]:
        """The (kind, id, session) items of this batch that earlier batches already counted."""
        messages: set[str] = set()
        tools: set[str] = set()  # both the start and the finish of each: a call counts by the first
        for e in events:
            kind = _ITEM_KIND.get(e.type)
            if kind == "m":
                messages.add(e.data["message_id"])
            elif kind is not None:
                tools.add(e.data["execution_id"])
        seen: set[tuple[str, str, str]] = set()
        for kinds, ids in (("'m'", messages), ("'s', 'f'", tools)):
            for r in db.fetch_by_keys(
                f"SELECT kind, item_id, session_id FROM {{session_items}} WHERE kind IN ({kinds}) AND item_id IN ({{keys}})",
                sorted(ids),
            ):
                seen.add((r[0], r[1], r[2]))
        return seen
