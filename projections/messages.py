"""Read model ``messages``: one row per message, in log order."""

from __future__ import annotations

from collections.abc import Sequence

from eventstore.records import RecordedEvent

from .base import Projection, Tables

COLUMNS = (
    "message_id",
    "session_id",
    "role",
    "content",
    "tokens_used",
    "model",
    "parent_id",
    "finish_reason",
    "position",
    "recorded_at",
)


class Messages(Projection):
    name = "messages"
    version = 1
    tables = ("messages",)
    personal = True
    types = frozenset({"message.appended"})
    ddl = """
    CREATE TABLE {messages} (
        message_id    TEXT PRIMARY KEY,
        session_id    TEXT NOT NULL,
        role          TEXT NOT NULL,
        content       TEXT,
        tokens_used   BIGINT,
        model         TEXT,
        parent_id     TEXT,
        finish_reason TEXT,
        position      BIGINT NOT NULL,
        recorded_at   TEXT NOT NULL
    );
    CREATE INDEX {messages}_session ON {messages} (session_id, position)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        rows: dict[str, tuple] = {}
        for e in events:  # a repeated message_id: the later event wins
            d = e.data
            rows[d["message_id"]] = (
                d["message_id"],
                d["session_id"],
                d["role"],
                d.get("content"),
                d.get("tokens_used"),
                d.get("model"),
                d.get("parent_id"),
                d.get("finish_reason"),
                e.position,
                e.recorded_at,
            )
        db.upsert("messages", COLUMNS, ("message_id",), rows.values())
