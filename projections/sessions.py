"""Read model ``sessions``: one row per session, its status and running counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore.records import RecordedEvent

from .base import Projection, Tables

COLUMNS = (
    "session_id",
    "status",
    "name",
    "task",
    "kind",
    "model",
    "message_count",
    "tokens_used",
    "tool_calls",
    "tool_failures",
    "started_at",
    "updated_at",
    "last_position",
)


class Sessions(Projection):
    name = "sessions"
    version = 1
    tables = ("sessions",)
    personal = True
    types = frozenset(
        {"session.started", "session.status_changed", "message.appended", "tool.started", "tool.finished"}
    )
    ddl = """
    CREATE TABLE {sessions} (
        session_id    TEXT PRIMARY KEY,
        status        TEXT NOT NULL,
        name          TEXT,
        task          TEXT,
        kind          TEXT,
        model         TEXT,
        message_count BIGINT NOT NULL,
        tokens_used   BIGINT NOT NULL,
        tool_calls    BIGINT NOT NULL,
        tool_failures BIGINT NOT NULL,
        started_at    TEXT,
        updated_at    TEXT NOT NULL,
        last_position BIGINT NOT NULL
    );
    CREATE INDEX {sessions}_status ON {sessions} (status)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        keys = sorted({e.data["session_id"] for e in events})
        rows: dict[str, dict[str, Any]] = {
            r[0]: dict(zip(COLUMNS, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(COLUMNS) + " FROM {sessions} WHERE session_id IN ({keys})", keys
            )
        }
        for e in events:
            d = e.data
            sid = d["session_id"]
            row = rows.get(sid)
            if row is None:
                row = rows[sid] = {c: None for c in COLUMNS} | {
                    "session_id": sid,
                    "status": "active",
                    "message_count": 0,
                    "tokens_used": 0,
                    "tool_calls": 0,
                    "tool_failures": 0,
                }
            if e.type == "session.started":
                for f in ("name", "task", "kind", "model"):
                    if d.get(f) is not None:
                        row[f] = d[f]
                row["started_at"] = e.recorded_at
            elif e.type == "session.status_changed":
                row["status"] = d["status"]
            elif e.type == "message.appended":
                row["message_count"] += 1
                row["tokens_used"] += d.get("tokens_used") or 0
                if d.get("model") and row["model"] is None:
                    row["model"] = d["model"]
            elif e.type == "tool.started":
                row["tool_calls"] += 1
            elif e.type == "tool.finished" and d["status"] != "completed":
                row["tool_failures"] += 1
            row["updated_at"] = e.recorded_at
            row["last_position"] = e.position
        db.upsert("sessions", COLUMNS, ("session_id",), [tuple(r[c] for c in COLUMNS) for r in rows.values()])
