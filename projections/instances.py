"""Read model ``instances``: one row per agent instance of a session.

An instance is named by its session and its ``instance_id`` (as messages and tool executions
are). A repeated ``instance.started`` or ``instance.finished`` (an agent's retry) changes
nothing: the first of each wins (docs/events.md, "Repeated events"). An ``instance.finished``
without an ``instance.started`` still makes a row (``agent_name`` NULL), so it stays visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore.records import RecordedEvent

from .base import Projection, Tables

COLUMNS = (
    "session_id",
    "instance_id",
    "agent_name",
    "model",
    "runtime",
    "worktree",
    "branch",
    "status",
    "files_changed",
    "lines_added",
    "lines_removed",
    "error",
    "started_at",
    "finished_at",
    "position",
)

_STARTED = ("agent_name", "model", "runtime", "worktree", "branch")
_FINISHED = ("status", "files_changed", "lines_added", "lines_removed", "error")


class Instances(Projection):
    name = "instances"
    version = 1
    tables = ("instances",)
    types = frozenset({"instance.started", "instance.finished"})
    ddl = """
    CREATE TABLE {instances} (
        session_id    TEXT NOT NULL,
        instance_id   TEXT NOT NULL,
        agent_name    TEXT,
        model         TEXT,
        runtime       TEXT,
        worktree      TEXT,
        branch        TEXT,
        status        TEXT NOT NULL,
        files_changed BIGINT,
        lines_added   BIGINT,
        lines_removed BIGINT,
        error         TEXT,
        started_at    TEXT,
        finished_at   TEXT,
        position      BIGINT NOT NULL,
        PRIMARY KEY (session_id, instance_id)
    );
    CREATE INDEX {instances}_agent ON {instances} (agent_name, started_at)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        # A session has a few instances: fetch its rows by the primary key's prefix.
        sids = sorted({e.data["session_id"] for e in events})
        rows: dict[tuple[str, str], dict[str, Any]] = {
            (r[0], r[1]): dict(zip(COLUMNS, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(COLUMNS) + " FROM {instances} WHERE session_id IN ({keys})", sids
            )
        }
        changed: set[tuple[str, str]] = set()
        for e in events:
            d = e.data
            key = (d["session_id"], d["instance_id"])
            r = rows.get(key)
            if r is None:
                r = rows[key] = {c: None for c in COLUMNS} | {
                    "session_id": key[0],
                    "instance_id": key[1],
                    "status": "running",
                }
            if e.type == "instance.started":
                if r["started_at"] is not None:  # a retry: the first wins
                    continue
                for f in _STARTED:
                    r[f] = d.get(f)
                r["started_at"] = e.recorded_at
            else:
                if r["finished_at"] is not None:
                    continue
                for f in _FINISHED:
                    r[f] = d.get(f)
                r["finished_at"] = e.recorded_at
            r["position"] = e.position
            changed.add(key)
        db.upsert(
            "instances",
            COLUMNS,
            ("session_id", "instance_id"),
            [tuple(rows[k][c] for c in COLUMNS) for k in sorted(changed)],
        )
