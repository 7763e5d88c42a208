"""Read model ``messages``: one row per message, in log order.

A message is named by its session and its ``message_id`` (``m1`` of two sessions are two
messages). A repeated ``message.appended`` (an agent's retry) changes nothing: the first wins.
"""

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
    version = 3  # 3: an index by time (a session's messages in time order: by position)
    tables = ("messages",)
    personal = True
    types = frozenset({"message.appended"})
    ddl = """
    CREATE TABLE {messages} (
        message_id    TEXT NOT NULL,
        session_id    TEXT NOT NULL,
        role          TEXT NOT NULL,
        content       TEXT,
        tokens_used   BIGINT,
        model         TEXT,
        parent_id     TEXT,
        finish_reason TEXT,
        position      BIGINT NOT NULL,
        recorded_at   TEXT NOT NULL,
        PRIMARY KEY (session_id, message_id)
    );
    CREATE INDEX {messages}_session ON {messages} (session_id, position);
    CREATE INDEX {messages}_time ON {messages} (recorded_at)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        rows: dict[tuple[str, str], tuple] = {}
        for e in events:  # a repeated (session_id, message_id): the first event wins
            d = e.data
            key = (d["session_id"], d["message_id"])
            if key in rows:
                continue
            rows[key] = (
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
        db.executemany(
            f"INSERT INTO {{messages}} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
            "ON CONFLICT (session_id, message_id) DO NOTHING",
            rows.values(),
        )
