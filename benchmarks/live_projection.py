"""Live projection: a projector following the log while another process appends at a fixed rate.

Issue 12 asks that live projection keeps up with 5,000 appends/s. An appender process writes the
read-model benchmark's event mix in batches of 50 every 10 ms (agents are other processes);
the projector (``Runner.follow``, every read model) runs in this process. The figure is the
rate the read models reached (events projected per second of the run, drain included) beside
the rate actually appended, with the largest lag seen and how long the lag took to drain once
the appends stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import tempfile
import threading
import time

from eventstore import EventStore

from .harness import Figure, _figure, catalogue_event

BATCH = 50


def _appender(path: str, rate: int, seconds: float, start: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    rng = random.Random(7)
    with EventStore.open(path) as store:
        start.wait()
        began = time.perf_counter()
        i = 0
        while (elapsed := time.perf_counter() - began) < seconds:
            due = int(elapsed * rate)  # paced: catch up to where the rate says we should be
            while i + BATCH <= due:
                store.append(f"live-{i // 4000}", [catalogue_event(i + k, rng) for k in range(BATCH)])
                i += BATCH
            time.sleep(0.002)
        out.put((i, time.perf_counter() - began))


def run_live(rate: int = 5000, seconds: float = 5.0, *, directory: str | None = None) -> list[Figure]:
    from projections import Runner

    with tempfile.TemporaryDirectory(dir=directory) as d:
        path = os.path.join(d, "live.db")
        EventStore.open(path).close()
        ctx = mp.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=_appender, args=(path, rate, seconds, start, out))
        proc.start()
        with EventStore.open(path) as store:
            runner = Runner(store, batch_size=2000)
            runner.run_once()
            stop = threading.Event()
            follower = threading.Thread(target=runner.follow, args=(stop,), kwargs={"poll": 0.02}, daemon=True)

            def lag() -> int:
                head = store.head()[0]
                rows = store.backend.query("SELECT min(position) FROM projection_state WHERE active = 1")
                return head - int(rows[0][0] or 0)

            follower.start()
            began = time.perf_counter()
            start.set()
            worst = 0
            while proc.is_alive():
                worst = max(worst, lag())
                time.sleep(0.05)
            appended, append_seconds = out.get(timeout=30)
            proc.join()
            stopped = time.perf_counter()
            while lag() > 0 and time.perf_counter() - stopped < 60:
                time.sleep(0.01)
            drained = time.perf_counter() - stopped
            total = time.perf_counter() - began
            stop.set()
            follower.join(timeout=30)
            runner.release()
    achieved = appended / append_seconds
    f = _figure(
        f"live projection of all {len(runner.projections)} read models, appends at {rate:,}/s",
        appended / total,
        "events appended per second (another process)",
        achieved,
        target=f"keeps up: appends >= {rate:,}/s, lag drained < 1 s",
        note=f"{appended:,} events in {append_seconds:.1f} s; largest lag {worst:,} events; "
        f"drained {drained * 1000:,.0f} ms after the last append",
    )
    f.met = achieved >= 0.95 * rate and drained < 1.0
    return [f]


__all__ = ["run_live"]
