"""Order statistics shared by the metrics and SLO read models (docs/events.md, "Metrics").

Percentiles use the nearest-rank method on the window's values sorted
ascending: p-th percentile = sorted[ceil(p/100 * n) - 1]. It always returns an
observed value, needs no interpolation and is exactly reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float:
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no values")
    return sorted_values[max(0, math.ceil(p / 100 * n) - 1)]


def objective(values: Sequence[float], kind: str) -> float:
    """The value of an SLO objective (p50, p95, p99, max, mean) over ``values``."""
    if kind == "max":
        return max(values)
    if kind == "mean":
        return math.fsum(values) / len(values)
    return percentile(sorted(values), float(kind[1:]))
