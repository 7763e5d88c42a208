"""Prune (retention) on SQLite beside a plain copy of the database file, both in the same run.

The issue's target is at least 100,000 events/s; the copy (``shutil.copyfile`` of the database
and its WAL, then an fsync) is the floor any operation that touches every row cannot beat by
much, measured right next to it on the same disk. Recorded in docs/performance.md.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

from eventstore import retention
from eventstore.store import EventStore

from .harness import Figure, _figure, _rate, copy_seconds, fill

TARGET = 100_000
"""Events pruned per second the issue asks for, on SQLite."""


def run_prune(
    n: int = 100_000, *, repeat: int = 3, directory: str | None = None, progress: Callable[[str], None] | None = None
) -> list[Figure]:
    """Events/s of ``prune`` removing every payload of ``n`` events (one 0s policy), and of a
    plain file copy of the same database; median of ``repeat`` fresh copies each."""
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(dir=directory) as d:
        master = os.path.join(d, "master.db")
        say(f"filling {n:,} events for prune")
        fill(master, n)
        with EventStore.open(master) as store:
            retention.set_floor(store, "0s", by="bench")
            retention.set_policy(store, streams="s*", keep="0s", by="bench")
        prune_rates: list[float] = []
        copy_rates: list[float] = []
        for i in range(repeat):
            say(f"prune and file copy, run {i + 1}")
            work = os.path.join(d, f"prune{i}.db")
            copy_rates.append(_rate(n, copy_seconds(master, work)))  # the baseline, and the copy prune then works on
            with EventStore.open(work) as store:
                t = time.perf_counter()
                report = retention.prune(store, by="bench")  # a 0s policy: everything is past it now
                seconds = time.perf_counter() - t
                assert report.count == n, report
            prune_rates.append(_rate(n, seconds))
    ours = sorted(prune_rates)[len(prune_rates) // 2]
    base = sorted(copy_rates)[len(copy_rates) // 2]
    fig = _figure(
        f"prune ({n:,} payloads, 5,000 per transaction)",
        ours,
        "plain copy of the database file (+fsync)",
        base,
        target=f">= {TARGET:,} events/s",
        note="ratio: prune rate / copy rate, both in events of this database per second",
    )
    fig.met = ours >= TARGET
    return [fig]
