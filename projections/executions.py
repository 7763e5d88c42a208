"""Read model ``executions``: one row per workflow or pipeline run, with its stage timings.

An execution is named by its ``execution_id``. Its first ``execution.started`` and first
``execution.finished`` win (a repeated one is an agent's retry and changes nothing). Every
``metric.recorded`` that names an ``execution_id`` is a stage timing of that execution
(``execution_stages``: one row per execution, stage and metric; stage '' when none is given).
A finish or a timing for an execution that never started keeps a row with status
``unknown`` (evidence is shown, not dropped), until its ``execution.started`` arrives.

The views of the tier-2 audit schema are defined here, over the public table names:
``recent_executions``, ``agent_performance_summary`` and ``pipeline_stage_performance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventstore import records
from eventstore.records import RecordedEvent

from .base import Projection, Tables

COLUMNS = (
    "execution_id",
    "workflow",
    "kind",
    "session_id",
    "agent_id",
    "status",
    "outcome",
    "error",
    "duration_ms",
    "stage_count",
    "metric_count",
    "started_at",
    "finished_at",
    "first_position",
    "last_position",
)
STAGE_COLUMNS = (
    "execution_id",
    "stage",
    "metric",
    "unit",
    "count",
    "total",
    "min",
    "max",
    "first_at",
    "last_at",
    "last_position",
)

RECENT = 100
"""Rows of ``recent_executions``: the latest started executions."""


def agent_of(data: dict[str, Any], metadata: Any) -> str | None:
    """Who ran it: the writing credential's ``principal`` (set by the service; a client cannot
    forge it), else ``data.agent_id``, else ``metadata.agent_id``."""
    if type(metadata) is dict and type(p := metadata.get("principal")) is str and p:
        return p
    agent = data.get("agent_id")
    return str(agent) if agent else records.agent_of(metadata)


def _ms_between(start: str, end: str) -> float:
    """Milliseconds between two ``recorded_at`` values (a pure function of the log)."""
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000, 3)


class Executions(Projection):
    name = "executions"
    version = 2  # 2: a finish without its start stays 'unknown'; the principal names the agent first
    tables = ("executions", "execution_stages")
    types = frozenset({"execution.started", "execution.finished", "metric.recorded"})
    ddl = """
    CREATE TABLE {executions} (
        execution_id   TEXT PRIMARY KEY,
        workflow       TEXT,
        kind           TEXT,
        session_id     TEXT,
        agent_id       TEXT,
        status         TEXT NOT NULL,
        outcome        TEXT,
        error          TEXT,
        duration_ms    DOUBLE PRECISION,
        stage_count    BIGINT NOT NULL,
        metric_count   BIGINT NOT NULL,
        started_at     TEXT,
        finished_at    TEXT,
        first_position BIGINT NOT NULL,
        last_position  BIGINT NOT NULL
    );
    CREATE INDEX {executions}_agent ON {executions} (agent_id, started_at);
    CREATE INDEX {executions}_started ON {executions} (started_at);
    CREATE INDEX {executions}_workflow ON {executions} (workflow, started_at);
    CREATE INDEX {executions}_session ON {executions} (session_id);
    CREATE TABLE {execution_stages} (
        execution_id  TEXT NOT NULL,
        stage         TEXT NOT NULL,
        metric        TEXT NOT NULL,
        unit          TEXT,
        count         BIGINT NOT NULL,
        total         DOUBLE PRECISION NOT NULL,
        min           DOUBLE PRECISION NOT NULL,
        max           DOUBLE PRECISION NOT NULL,
        first_at      TEXT NOT NULL,
        last_at       TEXT NOT NULL,
        last_position BIGINT NOT NULL,
        PRIMARY KEY (execution_id, stage, metric)
    );
    CREATE INDEX {execution_stages}_stage ON {execution_stages} (stage, metric)
    """
    views = {
        "recent_executions": (
            "SELECT execution_id, workflow, kind, session_id, agent_id, status, outcome, duration_ms, "
            "stage_count, started_at, finished_at FROM executions WHERE started_at IS NOT NULL "
            f"ORDER BY started_at DESC, execution_id LIMIT {RECENT}"
        ),
        "agent_performance_summary": (
            "SELECT agent_id, count(*) AS executions, "
            "sum(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS succeeded, "
            "sum(CASE WHEN outcome IS NOT NULL AND outcome <> 'succeeded' THEN 1 ELSE 0 END) AS failed, "
            "sum(CASE WHEN outcome IS NULL THEN 1 ELSE 0 END) AS unfinished, "
            "CAST(avg(CASE WHEN outcome = 'succeeded' THEN 1.0 WHEN outcome IS NOT NULL THEN 0.0 END) "
            "AS DOUBLE PRECISION) AS success_rate, "
            "CAST(avg(duration_ms) AS DOUBLE PRECISION) AS avg_duration_ms, max(duration_ms) AS max_duration_ms, "
            "min(started_at) AS first_started_at, max(started_at) AS last_started_at "
            "FROM executions WHERE agent_id IS NOT NULL GROUP BY agent_id"
        ),
        "pipeline_stage_performance": (
            "SELECT e.workflow AS workflow, s.stage AS stage, s.metric AS metric, max(s.unit) AS unit, "
            "count(DISTINCT s.execution_id) AS executions, sum(s.count) AS observations, "
            "CAST(sum(s.total) / sum(s.count) AS DOUBLE PRECISION) AS mean, min(s.min) AS min, max(s.max) AS max "
            "FROM execution_stages s JOIN executions e ON e.execution_id = s.execution_id "
            "GROUP BY e.workflow, s.stage, s.metric"
        ),
    }

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        events = [e for e in events if e.type != "metric.recorded" or e.data.get("execution_id")]
        if not events:
            return
        keys = sorted({e.data["execution_id"] for e in events})
        rows: dict[str, dict[str, Any]] = {
            r[0]: dict(zip(COLUMNS, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(COLUMNS) + " FROM {executions} WHERE execution_id IN ({keys})", keys
            )
        }
        stages: dict[tuple[str, str, str], dict[str, Any]] = {}
        stage_names: set[tuple[str, str]] = set()
        if any(e.type == "metric.recorded" for e in events):
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(STAGE_COLUMNS) + " FROM {execution_stages} WHERE execution_id IN ({keys})",
                sorted({e.data["execution_id"] for e in events if e.type == "metric.recorded"}),
            ):
                stages[(r[0], r[1], r[2])] = dict(zip(STAGE_COLUMNS, r))
                stage_names.add((r[0], r[1]))
        dirty: set[tuple[str, str, str]] = set()
        for e in events:
            d = e.data
            xid = d["execution_id"]
            row = rows.get(xid)
            if row is None:
                row = rows[xid] = {c: None for c in COLUMNS} | {
                    "execution_id": xid,
                    "status": "unknown",
                    "stage_count": 0,
                    "metric_count": 0,
                    "first_position": e.position,
                }
            t = e.type
            if t == "execution.started":
                if row["started_at"] is not None:
                    continue  # a repeated execution.started: the first wins
                row.update(
                    workflow=d["workflow"],
                    kind=d.get("kind") or "workflow",
                    session_id=d.get("session_id"),
                    agent_id=agent_of(d, e.metadata),
                    started_at=e.recorded_at,
                    status=row["outcome"] or "running",  # a finish seen first now counts
                )
            elif t == "execution.finished":
                if row["finished_at"] is not None:
                    continue  # a repeated execution.finished: the first wins
                duration = d.get("duration_ms")
                if duration is None and row["started_at"] is not None:
                    duration = _ms_between(row["started_at"], e.recorded_at)
                row.update(
                    # without its start the row stays 'unknown' (the outcome is kept beside it)
                    status=d["outcome"] if row["started_at"] is not None else "unknown",
                    outcome=d["outcome"],
                    error=d.get("error"),
                    duration_ms=duration,
                    finished_at=e.recorded_at,
                )
            else:  # metric.recorded: a stage timing
                stage = d.get("stage") or ""
                key = (xid, stage, d["metric"])
                value = float(d["value"])
                st = stages.get(key)
                if st is None:
                    st = stages[key] = {
                        "execution_id": xid,
                        "stage": stage,
                        "metric": d["metric"],
                        "unit": None,
                        "count": 0,
                        "total": 0.0,
                        "min": value,
                        "max": value,
                        "first_at": e.recorded_at,
                    }
                    if (xid, stage) not in stage_names:
                        stage_names.add((xid, stage))
                        row["stage_count"] += 1
                st["count"] += 1
                st["total"] += value
                st["min"] = min(st["min"], value)
                st["max"] = max(st["max"], value)
                if d.get("unit"):
                    st["unit"] = d["unit"]
                st["last_at"] = e.recorded_at
                st["last_position"] = e.position
                dirty.add(key)
                row["metric_count"] += 1
            row["last_position"] = e.position
        db.upsert("executions", COLUMNS, ("execution_id",), [tuple(r[c] for c in COLUMNS) for r in rows.values()])
        db.upsert(
            "execution_stages",
            STAGE_COLUMNS,
            ("execution_id", "stage", "metric"),
            [tuple(stages[k][c] for c in STAGE_COLUMNS) for k in sorted(dirty)],
        )
