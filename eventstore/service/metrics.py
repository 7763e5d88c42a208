"""Prometheus metrics of the service (``GET /metrics``), on a registry of its own.

Labels are routes, statuses, roles and reasons: never a credential's secret, never a
stream id or a request path with ids in it (unbounded label sets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _ProjectionLag(Collector):
    def __init__(self, lags: Callable[[], dict[str, int]]):
        self.lags = lags

    def collect(self) -> Iterator[Any]:
        g = GaugeMetricFamily(
            "eventstore_projection_lag_events", "Events not yet applied, per read model", labels=["projection"]
        )
        try:
            for name, lag in self.lags().items():
                g.add_metric([name], lag)
        except Exception:  # no projection tables, or the database is down: no samples
            pass
        yield g


class Metrics:
    def __init__(self, queue_depth: Callable[[], float], projection_lags: Callable[[], dict[str, int]]):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("eventstore_http_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.events = Counter("eventstore_events_appended", "Events appended through the service", registry=r)
        self.commit_events = Histogram(
            "eventstore_events_per_commit",
            "Events per commit (one disk sync each)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
            registry=r,
        )
        self.append_latency = Histogram(
            "eventstore_append_seconds",
            "Time from a complete append request to its durable answer",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=r,
        )
        self.refused = Counter(
            "eventstore_credentials_refused", "Requests refused for their credential", ["reason"], registry=r
        )
        self.queue_depth = Gauge("eventstore_write_queue_depth", "Append requests queued or committing", registry=r)
        self.queue_depth.set_function(queue_depth)
        r.register(_ProjectionLag(projection_lags))
