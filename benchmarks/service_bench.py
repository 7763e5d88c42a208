"""Benchmark: ``eventstore serve`` under 16 keep-alive connections vs 16 processes appending directly.

    .venv/bin/python benchmarks/service_bench.py --backend sqlite --seconds 5 --runs 2
    .venv/bin/python benchmarks/service_bench.py --backend postgres          # throwaway cluster (tests/pg_cluster.py)

Each run, on a fresh database of the same kind and the same durability (full):

- direct: 16 processes, each ``EventStore.open(url)`` and single-event appends to its own stream;
- service: ``eventstore serve`` (a subprocess) and a load generator that costs little CPU
  (one asyncio process, 16 keep-alive connections writing raw HTTP/1.1 requests, or wrk
  with ``--wrk``) sending single-event appends, then 20-event appends.

Prints events/s and p50/p99 request latency for each, ratios first. The machine is
small and shared: run each configuration at least twice (``--runs``) and report all runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONNECTIONS = 16


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    latencies: list[float]
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:34} {self.rate:9.0f} events/s  p50 {self.pct(0.5):7.2f} ms  p99 {self.pct(0.99):7.2f} ms"
            f"  max {self.pct(1.0):7.1f} ms" + (f"  errors {self.errors}" if self.errors else "")
        )


# -- direct: 16 processes -------------------------------------------------------------
def _direct_worker(url: str, k: int, seconds: float, start: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from eventstore import EventStore, NewEvent

    lat: list[float] = []
    with EventStore.open(url) as store:
        start.wait()
        stop = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            store.append(f"direct/{k}", [NewEvent(type="note", data={"i": i, "text": "hello"})])
            lat.append(time.perf_counter() - t0)
            i += 1
    out.put(lat)


def run_direct(url: str, seconds: float) -> Result:
    from eventstore import EventStore

    EventStore.open(url).close()  # migrate once, before the workers race
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_direct_worker, args=(url, k, seconds, start, out)) for k in range(CONNECTIONS)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every process open its connection
    t0 = time.perf_counter()
    start.set()
    lats: list[float] = []
    for _ in procs:
        lats += out.get()
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return Result("direct, 16 processes, 1 event", len(lats), elapsed, lats)


# -- the service ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    def __init__(self, url: str, writer: str):
        from eventstore import EventStore
        from eventstore.service.credentials import Credentials

        with EventStore.open(url) as store:
            self.token = Credentials(store).create(
                f"bench-{os.getpid()}-{time.monotonic_ns()}", "appender", ["bench/*"], created_by="bench"
            )[0]
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from eventstore.cli import main; main()",
                "--db",
                url,
                "serve",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--no-access-log",
                "--writer",
                writer,
                "--max-pending",
                "4096",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("serve did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _request(port: int, token: str, stream: str, n: int) -> bytes:
    import msgspec

    body = msgspec.json.encode({"events": [{"type": "note", "data": {"i": i, "text": "hello"}} for i in range(n)]})
    return (
        f"POST /v1/streams/{stream}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _connection(port: int, req: bytes, stop: float, lat: list[float], errors: list[int]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ok = 0
    try:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status == 200:
                ok += 1
            else:
                errors.append(status)
    finally:
        writer.close()
    return ok


async def _load(port: int, token: str, n: int, seconds: float) -> tuple[int, float, list[float], int]:
    lat: list[float] = []
    errors: list[int] = []
    reqs = [_request(port, token, f"bench/{k}", n) for k in range(CONNECTIONS)]
    # warm-up: every connection once
    await asyncio.gather(*(_connection(port, reqs[k], time.perf_counter() + 0.3, [], []) for k in range(CONNECTIONS)))
    t0 = time.perf_counter()
    stop = t0 + seconds
    oks = await asyncio.gather(*(_connection(port, reqs[k], stop, lat, errors) for k in range(CONNECTIONS)))
    return sum(oks) * n, time.perf_counter() - t0, lat, len(errors)


def run_service(url: str, seconds: float, n: int, writer: str, use_wrk: bool = False) -> Result:
    serve = Serve(url, writer)
    try:
        if use_wrk and shutil.which("wrk"):
            return _run_wrk(serve, seconds, n, writer)
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        events, elapsed, lat, errors = runner(_load(serve.port, serve.token, n, seconds))
        return Result(f"serve ({writer}), 16 conns, {n} event{'s' if n > 1 else ''}", events, elapsed, lat, errors)
    finally:
        serve.stop()


def _run_wrk(serve: Serve, seconds: float, n: int, writer: str) -> Result:
    import msgspec

    body = msgspec.json.encode({"events": [{"type": "note", "data": {"i": i, "text": "hello"}} for i in range(n)]})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(
            f'wrk.method = "POST"\nwrk.body = {msgspec.json.encode(body.decode()).decode()}\n'
            f'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {serve.token}"\n'
            "done = function(summary, latency, requests)\n"
            '  io.write(string.format("RESULT %d %d %f %f %f\\n", summary.requests, summary.duration,'
            " latency:percentile(50), latency:percentile(99), latency.max))\n"
            "  local e = summary.errors\n"
            '  io.write(string.format("ERRORS %d\\n", e.connect + e.read + e.write + e.status + e.timeout))\n'
            "end\n"
        )
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{int(seconds)}s",
            "-s",
            f.name,
            f"http://127.0.0.1:{serve.port}/v1/streams/bench/wrk/events",
        ],
        capture_output=True,
        text=True,
    ).stdout
    os.unlink(f.name)
    res = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    errs = int(next(line for line in out.splitlines() if line.startswith("ERRORS")).split()[1])
    reqs, dur_us, p50, p99, mx = int(res[1]), int(res[2]), float(res[3]), float(res[4]), float(res[5])
    # wrk's latency percentiles disagree with its own throughput here (Little's law), so none are
    # reported: latency figures come from the asyncio load generator.
    del p50, p99, mx
    return Result(f"serve ({writer}), wrk 16 conns, {n} ev", (reqs - errs) * n, dur_us / 1e6, [], errs)


# -- in `python -m benchmarks --service` ----------------------------------------------------
TARGETS = {"sqlite": 1.5, "postgres": 3.0}
"""Issue 11's targets: serve's single-event throughput over the direct processes'."""


class _Databases:
    """A fresh database per case: files in a temporary directory, or databases created on the
    PostgreSQL server of ``pg`` (dropped afterwards); without CREATEDB, ``pg`` itself for every case."""

    def __init__(self, backend: str, pg: str | None):
        self.backend, self.pg = backend, pg
        self.dir = tempfile.mkdtemp(prefix="eventstore-svcbench-")
        self.created: list[str] = []
        self.count = 0
        self.reuse = False

    def next(self) -> str:
        self.count += 1
        if self.backend == "sqlite":
            return os.path.join(self.dir, f"bench-{self.count}.db")
        assert self.pg is not None
        if self.reuse:
            return self.pg
        import psycopg

        name = f"svcbench_{os.getpid()}_{self.count}"
        try:
            with psycopg.connect(self.pg, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
        except psycopg.Error:
            self.reuse = True  # no CREATEDB: every case appends to the given database (own streams)
            return self.pg
        self.created.append(name)
        return self.pg.rpartition("/")[0] + "/" + name

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.backend == "postgres" and self.created:
            import psycopg

            with psycopg.connect(self.pg, autocommit=True) as conn:  # type: ignore[arg-type]
                for name in self.created:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def figures(
    backend: str, *, pg: str | None = None, seconds: float = 5.0, runs: int = 2, progress: object = None
) -> list[object]:
    """Serve (its default writer, in a child process) vs 16 direct processes, same run, same durability: median of ``runs``.

    Returns harness.Figure rows, ratios first: throughput and p99 of single-event appends
    against the direct processes, then 20-event requests in events/s.
    """
    from .harness import Figure

    say = progress if callable(progress) else (lambda msg: None)
    direct: list[Result] = []
    one: list[Result] = []
    twenty: list[Result] = []
    dbs = _Databases(backend, pg)
    try:
        for run in range(1, runs + 1):
            say(f"service on {backend}, run {run}/{runs}: 16 direct processes ({seconds:g} s)")
            direct.append(run_direct(dbs.next(), seconds))
            say(f"service on {backend}, run {run}/{runs}: serve, 16 connections, 1 event per request")
            one.append(run_service(dbs.next(), seconds, 1, "process"))
            say(f"service on {backend}, run {run}/{runs}: serve, 16 connections, 20 events per request")
            twenty.append(run_service(dbs.next(), seconds, 20, "process"))
    finally:
        dbs.close()
    med = statistics.median
    d_rate, d_p99 = med(r.rate for r in direct), med(r.pct(0.99) for r in direct)
    s_rate, s_p99 = med(r.rate for r in one), med(r.pct(0.99) for r in one)
    t_rate = med(r.rate for r in twenty)
    errors = sum(r.errors for r in one + twenty)
    runs_note = f"median of {runs} run{'s' if runs > 1 else ''} of {seconds:g} s; durability full"
    target = TARGETS[backend]
    out = [
        Figure(
            case=f"{backend}: serve, 16 keep-alive connections, 1 event/request",
            ours=round(s_rate, 1),
            baseline="16 processes appending directly",
            base=round(d_rate, 1),
            ratio=round(s_rate / d_rate, 3),
            target=f">= {target:g}x",
            met=s_rate / d_rate >= target,
            note=f"p50 {med(r.pct(0.5) for r in one):.2f} ms vs {med(r.pct(0.5) for r in direct):.2f} ms; "
            + runs_note
            + (f"; {errors} error answers" if errors else ""),
        ),
        Figure(
            case=f"{backend}: p99 latency of those appends",
            ours=round(s_p99, 3),
            baseline="p99 of the direct processes",
            base=round(d_p99, 3),
            ratio=round(s_p99 / d_p99, 3),
            target="<= 0.3x" if backend == "sqlite" else "",
            met=(s_p99 / d_p99 <= 0.3) if backend == "sqlite" else None,
            unit="ms",
            note=f"max {med(r.pct(1.0) for r in one):.1f} ms vs {med(r.pct(1.0) for r in direct):.1f} ms",
        ),
        Figure(
            case=f"{backend}: serve, 16 connections, 20 events/request",
            ours=round(t_rate, 1),
            baseline="16 processes appending directly",
            base=round(d_rate, 1),
            ratio=round(t_rate / d_rate, 3),
            target=">= 20,000 events/s" if backend == "sqlite" else "",
            met=t_rate >= 20_000 if backend == "sqlite" else None,
            note=runs_note,
        ),
    ]
    return out  # type: ignore[return-value]


# -- driver -----------------------------------------------------------------------------
def fresh_url(backend: str, d: str, i: int, pg: str | None) -> str:
    if backend == "sqlite":
        return os.path.join(d, f"bench-{i}.db")
    if pg:
        import psycopg

        name = f"svcbench_{os.getpid()}_{i}"
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return pg.rpartition("/")[0] + "/" + name
    from tests import pg_cluster

    return pg_cluster.fresh_database_url(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg", help="PostgreSQL server URL to create databases on (default: a throwaway cluster)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--writers", default="process,queue,threads", help="writer strategies to measure")
    ap.add_argument("--wrk", action="store_true", help="use wrk as the load generator when installed")
    ap.add_argument("--skip-direct", action="store_true")
    args = ap.parse_args()
    writers = args.writers.split(",")
    counter = 0
    with tempfile.TemporaryDirectory() as d:
        for run in range(1, args.runs + 1):
            results: dict[str, Result] = {}

            def url() -> str:
                nonlocal counter
                counter += 1
                return fresh_url(args.backend, d, counter, args.pg)

            if not args.skip_direct:
                results["direct"] = run_direct(url(), args.seconds)
            for w in writers:
                results[f"{w}-1"] = run_service(url(), args.seconds, 1, w, args.wrk)
            results["queue-20"] = run_service(url(), args.seconds, 20, writers[0], args.wrk)
            print(f"\n== {args.backend}, run {run} ({args.seconds:g} s each, durability full) ==")
            direct = results.get("direct")
            if direct is not None:
                for w in writers:
                    r = results[f"{w}-1"]
                    print(
                        f"ratio serve({w})/direct: {r.rate / direct.rate:5.2f}x events/s, "
                        f"p99 {r.pct(0.99) / direct.pct(0.99):5.2f}x"
                    )
            for r in results.values():
                print(r.line())
            sys.stdout.flush()


if __name__ == "__main__":
    main()
