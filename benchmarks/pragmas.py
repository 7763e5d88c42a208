"""SQLite page cache and memory-mapped I/O: reads, verify and a rebuild of every read model
for a few ``cache_size`` / ``mmap_size`` values (docs/performance.md, "SQLite pragmas").

    .venv/bin/python -m benchmarks.pragmas [events] [repeat]

Each configuration opens the same database with fresh connections; the figures are the
median of ``repeat`` runs, the configurations alternating within each round so that a busy
neighbour on a shared machine slows them alike.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

from eventstore import EventStore

from .harness import _fill_catalogue

CONFIGS = [
    (-2000, 0),
    (-16000, 0),
    (-64000, 0),
    (-2000, 256 << 20),
    (-16000, 256 << 20),
    (-64000, 256 << 20),
]


def measure(path: str, cache_size: int, mmap_size: int) -> tuple[float, float, float]:
    """(read_all, verify, rebuild) in events per second."""
    from projections import Runner

    with EventStore.open(path, cache_size=cache_size, mmap_size=mmap_size) as store:
        n = store.head()[0]
        t = time.perf_counter()
        sum(1 for _ in store.read_all(batch_size=2000))
        read = n / (time.perf_counter() - t)
        t = time.perf_counter()
        assert store.verify().ok
        verify = n / (time.perf_counter() - t)
        runner = Runner(store, batch_size=2000)
        t = time.perf_counter()
        runner.rebuild_many([p.name for p in runner.projections])
        rebuild = n / (time.perf_counter() - t)
        runner.release()
    return read, verify, rebuild


def main(n: int = 100_000, repeat: int = 3) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "pragmas.db")
        _fill_catalogue(path, n)
        size = sum(os.path.getsize(f) for f in (path, path + "-wal") if os.path.exists(f))
        results: dict[tuple[int, int], list[tuple[float, float, float]]] = {c: [] for c in CONFIGS}
        for _ in range(repeat):
            for c in CONFIGS:
                results[c].append(measure(path, *c))
        print(f"{n:,} events, database {size / 1e6:.0f} MB, median of {repeat}")
        print(
            "| cache_size | mmap_size | read_all (events/s) | verify (events/s) | rebuild all read models (events/s) |"
        )
        print("|---|---|---|---|---|")
        for (cache, mmap), runs in results.items():
            med = [statistics.median(r[i] for r in runs) for i in range(3)]
            cache_text = f"{cache} ({-cache // 1000} MB)" if cache < 0 else f"{cache} pages"
            print(f"| {cache_text} | {mmap >> 20} MiB | {med[0]:,.0f} | {med[1]:,.0f} | {med[2]:,.0f} |")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
