"""Read models ``slos`` and ``slo_violations``: SLO definitions and their breach episodes.

An SLO holds when its objective (p50, p95, p99, max or mean) over its window
(the last ``window`` matching observations, default 100, counted from the
definition on) is at most its threshold. A breach episode starts at the first
observation that takes the objective above the threshold and ends at the first
one that brings it back; one ``slo_violations`` row per episode.
An SLO without a stage watches its metric at every stage. ``execution_id`` is that of the
observation that opened the episode (when the ``metric.recorded`` named one): the execution
that breached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore import codec
from eventstore.records import RecordedEvent

from .base import Projection, Tables
from .stats import objective

DEFAULT_WINDOW = 100
SLO_COLUMNS = (
    "slo_id",
    "metric",
    "stage",
    "objective",
    "threshold",
    "severity",
    "window_size",
    "observed",
    "in_breach",
    "open_position",
    "recent",
    "defined_at",
)
VIOLATION_COLUMNS = (
    "slo_id",
    "position",
    "metric",
    "stage",
    "objective",
    "observed",
    "peak",
    "threshold",
    "severity",
    "started_at",
    "ended_at",
    "ended_position",
    "execution_id",
)


class SloViolations(Projection):
    name = "slo_violations"
    version = 2
    tables = ("slos", "slo_violations")
    types = frozenset({"slo.defined", "metric.recorded"})
    ddl = """
    CREATE TABLE {slos} (
        slo_id        TEXT PRIMARY KEY,
        metric        TEXT NOT NULL,
        stage         TEXT,
        objective     TEXT NOT NULL,
        threshold     DOUBLE PRECISION NOT NULL,
        severity      TEXT NOT NULL,
        window_size   BIGINT NOT NULL,
        observed      DOUBLE PRECISION,
        in_breach     BIGINT NOT NULL,
        open_position BIGINT,
        recent        TEXT NOT NULL,
        defined_at    TEXT NOT NULL
    );
    CREATE TABLE {slo_violations} (
        slo_id         TEXT NOT NULL,
        position       BIGINT NOT NULL,
        metric         TEXT NOT NULL,
        stage          TEXT,
        objective      TEXT NOT NULL,
        observed       DOUBLE PRECISION NOT NULL,
        peak           DOUBLE PRECISION NOT NULL,
        threshold      DOUBLE PRECISION NOT NULL,
        severity       TEXT NOT NULL,
        started_at     TEXT NOT NULL,
        ended_at       TEXT,
        ended_position BIGINT,
        execution_id   TEXT,
        PRIMARY KEY (slo_id, position)
    );
    CREATE INDEX {slo_violations}_execution ON {slo_violations} (execution_id)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        slos: dict[str, dict[str, Any]] = {}
        for values in db.execute("SELECT " + ", ".join(SLO_COLUMNS) + " FROM {slos}"):
            row = dict(zip(SLO_COLUMNS, values))
            row["recent"] = codec.decode(row["recent"].encode())
            slos[row["slo_id"]] = row
        open_ids = [(s["slo_id"], s["open_position"]) for s in slos.values() if s["in_breach"]]
        episodes: dict[tuple[str, int], dict[str, Any]] = {}
        for slo_id, pos in open_ids:
            r = db.execute(
                "SELECT " + ", ".join(VIOLATION_COLUMNS) + " FROM {slo_violations} WHERE slo_id = ? AND position = ?",
                (slo_id, pos),
            )
            if r:
                episodes[(slo_id, pos)] = dict(zip(VIOLATION_COLUMNS, r[0]))
        touched: set[str] = set()
        for e in events:
            d = e.data
            if e.type == "slo.defined":
                old = slos.get(d["slo_id"])
                slos[d["slo_id"]] = {
                    "slo_id": d["slo_id"],
                    "metric": d["metric"],
                    "stage": d.get("stage"),
                    "objective": d["objective"],
                    "threshold": float(d["threshold"]),
                    "severity": d["severity"],
                    "window_size": d.get("window") or DEFAULT_WINDOW,
                    "observed": old["observed"] if old else None,
                    "in_breach": old["in_breach"] if old else 0,
                    "open_position": old["open_position"] if old else None,
                    "recent": old["recent"] if old else [],
                    "defined_at": e.recorded_at,
                }
                touched.add(d["slo_id"])
                continue
            stage = d.get("stage")
            for slo in slos.values():
                if slo["metric"] != d["metric"] or (slo["stage"] is not None and slo["stage"] != stage):
                    continue
                recent = slo["recent"]
                recent.append(float(d["value"]))
                if len(recent) > slo["window_size"]:
                    del recent[: len(recent) - slo["window_size"]]
                observed = objective(recent, slo["objective"])
                slo["observed"] = observed
                touched.add(slo["slo_id"])
                breached = observed > slo["threshold"]
                if breached and not slo["in_breach"]:
                    slo["in_breach"], slo["open_position"] = 1, e.position
                    episodes[(slo["slo_id"], e.position)] = {
                        "slo_id": slo["slo_id"],
                        "position": e.position,
                        "metric": slo["metric"],
                        "stage": slo["stage"],
                        "objective": slo["objective"],
                        "observed": observed,
                        "peak": observed,
                        "threshold": slo["threshold"],
                        "severity": slo["severity"],
                        "started_at": e.recorded_at,
                        "ended_at": None,
                        "ended_position": None,
                        "execution_id": d.get("execution_id"),
                    }
                elif slo["in_breach"]:
                    ep = episodes[(slo["slo_id"], slo["open_position"])]
                    if breached:
                        ep["peak"] = max(ep["peak"], observed)
                    else:
                        ep["ended_at"], ep["ended_position"] = e.recorded_at, e.position
                        slo["in_breach"], slo["open_position"] = 0, None
        db.upsert(
            "slos",
            SLO_COLUMNS,
            ("slo_id",),
            [
                tuple(codec.encode(s[c]).decode() if c == "recent" else s[c] for c in SLO_COLUMNS)
                for k, s in slos.items()
                if k in touched
            ],
        )
        db.upsert(
            "slo_violations",
            VIOLATION_COLUMNS,
            ("slo_id", "position"),
            [tuple(ep[c] for c in VIOLATION_COLUMNS) for ep in episodes.values()],
        )
