"""Read model ``metrics``: one row per metric and stage.

``count``, ``min``, ``max`` and ``mean`` cover every observation; ``p50``, ``p95``
and ``p99`` cover the most recent ``WINDOW`` observations (nearest-rank, see
projections/stats.py). ``stage`` is '' for observations without a stage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from eventstore import codec
from eventstore.records import RecordedEvent

from .base import Projection, Tables
from .stats import percentile

WINDOW = 1000
COLUMNS = (
    "metric",
    "stage",
    "unit",
    "count",
    "total",
    "min",
    "max",
    "mean",
    "p50",
    "p95",
    "p99",
    "recent",
    "updated_at",
    "last_position",
)


class Metrics(Projection):
    name = "metrics"
    version = 1
    tables = ("metrics",)
    types = frozenset({"metric.recorded"})
    ddl = """
    CREATE TABLE {metrics} (
        metric        TEXT NOT NULL,
        stage         TEXT NOT NULL,
        unit          TEXT,
        count         BIGINT NOT NULL,
        total         DOUBLE PRECISION NOT NULL,
        min           DOUBLE PRECISION NOT NULL,
        max           DOUBLE PRECISION NOT NULL,
        mean          DOUBLE PRECISION NOT NULL,
        p50           DOUBLE PRECISION NOT NULL,
        p95           DOUBLE PRECISION NOT NULL,
        p99           DOUBLE PRECISION NOT NULL,
        recent        TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        last_position BIGINT NOT NULL,
        PRIMARY KEY (metric, stage)
    )
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        touched: dict[tuple[str, str], dict[str, Any]] = {}
        metric_names = sorted({e.data["metric"] for e in events})
        for r in db.fetch_by_keys(
            "SELECT " + ", ".join(COLUMNS) + " FROM {metrics} WHERE metric IN ({keys})", metric_names
        ):
            row = dict(zip(COLUMNS, r))
            row["recent"] = codec.decode(row["recent"].encode())
            touched[(row["metric"], row["stage"])] = row
        for e in events:
            d = e.data
            value = float(d["value"])
            key = (d["metric"], d.get("stage") or "")
            found = touched.get(key)
            if found is None:
                row = touched[key] = {
                    "metric": key[0],
                    "stage": key[1],
                    "unit": None,
                    "count": 0,
                    "total": 0.0,
                    "min": value,
                    "max": value,
                    "recent": [],
                }
            else:
                row = found
            row["count"] += 1
            row["total"] += value
            row["min"] = min(row["min"], value)
            row["max"] = max(row["max"], value)
            if d.get("unit"):
                row["unit"] = d["unit"]
            row["recent"].append(value)
            if len(row["recent"]) > WINDOW:
                del row["recent"][: len(row["recent"]) - WINDOW]
            row["updated_at"] = e.recorded_at
            row["last_position"] = e.position
            row["dirty"] = True
        out = []
        for row in touched.values():
            if not row.pop("dirty", False):
                continue
            s = sorted(row["recent"])
            row.update(
                mean=row["total"] / row["count"], p50=percentile(s, 50), p95=percentile(s, 95), p99=percentile(s, 99)
            )
            assert math.isfinite(row["mean"])
            out.append(tuple(codec.encode(row[c]).decode() if c == "recent" else row[c] for c in COLUMNS))
        db.upsert("metrics", COLUMNS, ("metric", "stage"), out)
