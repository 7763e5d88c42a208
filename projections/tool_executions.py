"""Read model ``tool_executions``: one row per execution, from start to finish.

An execution is named by its session and its ``execution_id``. A repeated ``tool.started`` or
``tool.finished`` (an agent's retry) changes nothing: the first of each wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore.records import RecordedEvent

from .base import Projection, Tables, json_text

COLUMNS = (
    "execution_id",
    "session_id",
    "tool_name",
    "message_id",
    "status",
    "input",
    "output",
    "error",
    "duration_ms",
    "retry_count",
    "started_at",
    "finished_at",
    "position",
)


class ToolExecutions(Projection):
    name = "tool_executions"
    version = 3  # 3: input and output as jsonb on PostgreSQL, a GIN index on input
    tables = ("tool_executions",)
    personal = True
    types = frozenset({"tool.started", "tool.finished"})
    ddl = """
    CREATE TABLE {tool_executions} (
        execution_id TEXT NOT NULL,
        session_id   TEXT NOT NULL,
        tool_name    TEXT,
        message_id   TEXT,
        status       TEXT NOT NULL,
        input        {json},
        output       {json},
        error        TEXT,
        duration_ms  DOUBLE PRECISION,
        retry_count  BIGINT,
        started_at   TEXT,
        finished_at  TEXT,
        position     BIGINT NOT NULL,
        PRIMARY KEY (execution_id, session_id)
    );
    CREATE INDEX {tool_executions}_session ON {tool_executions} (session_id);
    CREATE INDEX {tool_executions}_status ON {tool_executions} (status)
    """
    ddl_postgres = """
    CREATE INDEX {tool_executions}_input ON {tool_executions} USING GIN (input jsonb_path_ops)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        keys = sorted({e.data["execution_id"] for e in events})
        rows: dict[tuple[str, str], dict[str, Any]] = {
            (r[1], r[0]): dict(zip(COLUMNS, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(COLUMNS) + " FROM {tool_executions} WHERE execution_id IN ({keys})", keys
            )
        }
        for e in events:
            d = e.data
            key = (d["session_id"], d["execution_id"])
            row = rows.get(key)
            if row is None:
                row = rows[key] = {c: None for c in COLUMNS} | {
                    "execution_id": d["execution_id"],
                    "session_id": d["session_id"],
                    "status": "started",
                }
            if e.type == "tool.started":
                if row["started_at"] is not None:
                    continue  # a repeated tool.started: the first wins
                row.update(
                    tool_name=d["tool_name"],
                    message_id=d.get("message_id"),
                    input=json_text(d["input"]),
                    started_at=e.recorded_at,
                )
            else:
                if row["finished_at"] is not None:
                    continue  # a repeated tool.finished: the first wins
                row.update(
                    status=d["status"],
                    output=json_text(d.get("output")),
                    error=d.get("error"),
                    duration_ms=d.get("duration_ms"),
                    retry_count=d.get("retry_count"),
                    finished_at=e.recorded_at,
                )
            row["position"] = e.position
        db.upsert(
            "tool_executions",
            COLUMNS,
            ("execution_id", "session_id"),
            [tuple(r[c] for c in COLUMNS) for r in rows.values()],
        )
