"""Benchmarks: events/s of the store beside a baseline measured in the same process.

Every figure is a ratio against something measured right next to it on the same
machine and disk, at the same durability: raw sqlite3 (or psycopg) inserts of
rows of the same shape into a table with the UNIQUE(stream_id, version) index,
a raw scan that SHA-256-hashes every row, and the ``eventsourcing`` library's
recorder. Results are recorded in docs/performance.md (``make bench``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from eventstore.records import NewEvent
from eventstore.store import EventStore

PAYLOAD = {
    "session_id": "s-0001",
    "message_id": "m-0001",
    "role": "assistant",
    "model": "claude-sonnet",
    "content": "x" * 180,
    "tokens_used": 321,
    "finish_reason": "stop",
}
METADATA = {"agent_id": "agent-7", "correlation_id": "c-1234"}
EVENT = NewEvent(type="message.appended", data=PAYLOAD, metadata=METADATA)


def events(n: int, start: int = 0) -> list[NewEvent]:
    """Distinct events of the benchmark's shape (no two share a payload object)."""
    return [
        NewEvent(type="message.appended", data={**PAYLOAD, "message_id": f"m-{start + i:08d}"}, metadata={**METADATA})
        for i in range(n)
    ]


ROW_BYTES = len(msgspec.json.encode(PAYLOAD)) + len(msgspec.json.encode(METADATA))


class Figure(msgspec.Struct, kw_only=True):
    case: str
    ours: float
    baseline: str
    base: float
    ratio: float
    target: str = ""
    met: bool | None = None
    unit: str = "events/s"
    note: str = ""


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _median(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def _figure(
    case: str,
    ours: float,
    baseline: str,
    base: float,
    target: str = "",
    lo: float | None = None,
    hi: float | None = None,
    unit: str = "events/s",
    note: str = "",
) -> Figure:
    ratio = ours / base if base else float("inf")
    met = None if lo is None else (ratio >= lo and (hi is None or ratio <= hi))
    return Figure(
        case=case,
        ours=round(ours, 1),
        baseline=baseline,
        base=round(base, 1),
        ratio=round(ratio, 3),
        target=target,
        met=met,
        unit=unit,
        note=note,
    )


# -- baselines ------------------------------------------------------------------------


def _raw_sqlite(path: str, synchronous: str = "FULL") -> sqlite3.Connection:
    """A plain table with the same columns as ``events`` and the UNIQUE(stream_id, version) index."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY, stream_id TEXT, version INTEGER, "
        "type TEXT, data BLOB, metadata BLOB, data_digest BLOB, metadata_digest BLOB, recorded_at TEXT, "
        "prev_hash BLOB, hash BLOB)"
    )
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS ev_sv ON events (stream_id, version)")
    return conn


def _raw_row(i: int, stream: str, version: int) -> tuple[Any, ...]:
    """A row equal in shape and size to a stored event (its hashes are not chained)."""
    data = msgspec.json.encode({**PAYLOAD, "message_id": f"m-{i:08d}"})
    meta = msgspec.json.encode(METADATA)
    h = hashlib.sha256(data).digest()
    return (
        i,
        stream,
        version,
        "message.appended",
        data,
        meta,
        h,
        hashlib.sha256(meta).digest(),
        "2026-01-01T00:00:00.000000Z",
        h,
        h,
    )


_RAW_INSERT = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)"


def raw_single_commits(d: str, n: int) -> float:
    """One row per transaction, prepared in advance: the disk-sync floor of a single append."""
    conn = _raw_sqlite(os.path.join(d, f"raw1-{uuid.uuid4().hex}.db"))
    rows = [_raw_row(i + 1, "s", i + 1) for i in range(n)]
    t = time.perf_counter()
    for r in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_RAW_INSERT, r)
        conn.execute("COMMIT")
    rate = _rate(n, time.perf_counter() - t)
    conn.close()
    return rate


def raw_executemany(d: str, n: int, batch: int) -> float:
    """``executemany`` of ``batch`` prepared rows per transaction."""
    conn = _raw_sqlite(os.path.join(d, f"rawm-{uuid.uuid4().hex}.db"))
    rows = [_raw_row(i + 1, "s", i + 1) for i in range(n)]
    t = time.perf_counter()
    for k in range(0, n, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_RAW_INSERT, rows[k : k + batch])
        conn.execute("COMMIT")
    rate = _rate(n, time.perf_counter() - t)
    conn.close()
    return rate


def raw_hash_scan(path: str) -> float:
    """Read every row and SHA-256-chain it: the floor for a verifier in Python."""
    conn = sqlite3.connect(path)
    t = time.perf_counter()
    prev = bytes(32)
    n = 0
    for row in conn.execute(
        "SELECT position, stream_id, version, type, data, metadata, recorded_at, hash FROM events ORDER BY position"
    ):
        prev = hashlib.sha256(
            b"".join((prev, str(row[0]).encode(), row[1].encode(), row[3].encode(), row[4], row[5], row[6].encode()))
        ).digest()
        n += 1
    rate = _rate(n, time.perf_counter() - t)
    conn.close()
    return rate


def thread_handoff_us(n: int = 2000) -> float:
    """Microseconds for one thread to wake another and pass it the GIL (a lock ping-pong).

    Every single-event append from one of several threads costs at least one such hand-off:
    its thread sleeps until the commit that holds its event is on disk, then must run again.
    """
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def other() -> None:
        for _ in range(n):
            ping.acquire()
            pong.release()

    t = threading.Thread(target=other)
    t.start()
    start = time.perf_counter()
    for _ in range(n):
        ping.release()
        pong.acquire()
    seconds = time.perf_counter() - start
    t.join()
    return seconds / (2 * n) * 1e6


def eventsourcing_saves(d: str, n: int, per_save: int) -> float | None:
    """The eventsourcing library's SQLite application recorder, given rows it need not encode.

    ``insert_events`` of ready-made ``StoredEvent`` objects (the payload bytes of our events):
    its persistence alone, without the aggregate, the transcoder or the mapper that an
    application pays for (see ``eventsourcing_app_saves``). Its default is synchronous=FULL.
    """
    try:
        from eventsourcing.persistence import StoredEvent
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
    except ImportError:
        return None
    store = SQLiteDatastore(os.path.join(d, f"es-{uuid.uuid4().hex}.db"))
    rec = SQLiteApplicationRecorder(store)
    rec.create_table()
    state = msgspec.json.encode(PAYLOAD) + msgspec.json.encode(METADATA)
    oid = uuid.uuid4()
    batches = [
        [StoredEvent(oid, k + j + 1, "bench:Event", state) for j in range(per_save)] for k in range(0, n, per_save)
    ]
    t = time.perf_counter()
    for b in batches:
        rec.insert_events(b)
    rate = _rate(n, time.perf_counter() - t)
    store.close()
    return rate


@functools.cache
def _es_session() -> type:
    """An eventsourcing aggregate whose event carries the fields of our event's data and metadata."""
    from eventsourcing.domain import Aggregate, event

    class Session(Aggregate):
        @event("Started")
        def __init__(self, session_id: str):
            self.session_id = session_id
            self.messages = 0

        @event("MessageAppended")
        def append_message(
            self,
            message_id: str,
            role: str,
            model: str,
            content: str,
            tokens_used: int,
            finish_reason: str,
            agent_id: str,
            correlation_id: str,
        ) -> None:
            self.messages += 1

    return Session


def _es_app(d: str) -> Any:
    from eventsourcing.application import Application

    return Application(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": os.path.join(d, f"esapp-{uuid.uuid4().hex}.db"),
        }
    )


def eventsourcing_synchronous(d: str) -> int | None:
    """``PRAGMA synchronous`` on an eventsourcing SQLite connection (2 = FULL), or None if not installed."""
    try:
        app = _es_app(d)
    except ImportError:
        return None
    try:
        with app.recorder.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA synchronous")
            return int(c.fetchone()[0])
    finally:
        app.close()


def eventsourcing_app_saves(d: str, n: int, per_save: int) -> float | None:
    """The eventsourcing library end to end: an aggregate's new events saved by its Application.

    Like ``EventStore.append`` it takes domain events in and returns once they are committed:
    it creates the events, transcodes them to JSON and inserts them (one transaction per save).
    """
    try:
        session_type = _es_session()
        app = _es_app(d)
    except ImportError:
        return None
    try:
        session = session_type("s-0001")
        app.save(session)
        fields = {k: v for k, v in PAYLOAD.items() if k != "session_id"} | METADATA
        todo = [{**fields, "message_id": f"m-{i:08d}"} for i in range(n // per_save * per_save)]
        t = time.perf_counter()
        for k in range(0, len(todo), per_save):
            for kwargs in todo[k : k + per_save]:
                session.append_message(**kwargs)
            app.save(session)
        return _rate(len(todo), time.perf_counter() - t)
    finally:
        app.close()


# -- ours -----------------------------------------------------------------------------


class SingleRun(msgspec.Struct):
    rate: float
    commits: int
    seconds: float


def ours_single_run(
    d: str, n: int, threads: int = 1, url: str | None = None, durability: Literal["full", "process"] = "full"
) -> SingleRun:
    """``threads`` threads share one store, each appending ``n // threads`` events one at a time."""
    url = url or os.path.join(d, f"ours-{uuid.uuid4().hex}.db")
    with EventStore.open(url, durability=durability) as store:
        per = n // threads
        todo = [events(per, k * per) for k in range(threads)]

        def work(k: int) -> None:
            stream = f"s{k}"
            for e in todo[k]:
                store.append(stream, [e])

        t = time.perf_counter()
        if threads == 1:
            work(0)
        else:
            ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
            for x in ts:
                x.start()
            for x in ts:
                x.join()
        seconds = time.perf_counter() - t
        # Every commit stamps its rows with one recorded_at (microseconds; commits are at least a
        # disk sync apart), so distinct timestamps count the commits, i.e. the syncs paid.
        commits = store.backend.query("SELECT count(DISTINCT recorded_at) FROM events")[0][0]
    return SingleRun(rate=_rate(per * threads, seconds), commits=commits, seconds=seconds)


def ours_single(d: str, n: int, threads: int = 1, url: str | None = None) -> float:
    return ours_single_run(d, n, threads, url).rate


def ours_synchronous(d: str) -> int:
    """``PRAGMA synchronous`` of a store opened at the default durability (2 = FULL)."""
    with EventStore.open(os.path.join(d, f"sync-{uuid.uuid4().hex}.db")) as store:
        return int(store.backend.query("PRAGMA synchronous")[0][0])


def ours_batches(d: str, n: int, batch: int, url: str | None = None) -> float:
    url = url or os.path.join(d, f"ourb-{uuid.uuid4().hex}.db")
    with EventStore.open(url) as store:
        batches = [events(batch, k * batch) for k in range(n // batch)]
        t = time.perf_counter()
        for b in batches:
            store.append("s", b)
        return _rate(n // batch * batch, time.perf_counter() - t)


def ours_verify(path: str) -> float:
    with EventStore.open(path, migrate=False) as store:
        t = time.perf_counter()
        report = store.verify()
        assert report.ok
        return _rate(report.checked, time.perf_counter() - t)


def fill(url: str, n: int, batch: int = 1000) -> None:
    with EventStore.open(url, durability="process") as store:
        for k in range(0, n, batch):
            store.append(f"s{k // batch % 50}", events(min(batch, n - k), k))


# -- suites ---------------------------------------------------------------------------

SQLITE_SIZES = {"single": 2000, "threads8": 8000, "batch1000": 100_000, "batch100": 20_000, "verify": 100_000}
"""Events per run of each case of the SQLite suite at scale 1 (``eventstore bench``)."""

_SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _sizes(scale: float) -> dict[str, int]:
    floor = {"single": 10, "threads8": 80, "batch1000": 1000, "batch100": 100, "verify": 1000}
    out = {k: max(floor[k], int(v * scale)) for k, v in SQLITE_SIZES.items()}
    out["batch1000"] -= out["batch1000"] % 1000
    out["batch100"] -= out["batch100"] % 100
    return out


def _alternate(*fns: Callable[[], float | None], repeat: int) -> list[float | None]:
    """Median of each function's figures, the functions run in turn ``repeat`` times.

    Alternating (ours, baseline, ours, baseline, ...) instead of running one after the other
    exposes both to the same drift in the machine's load.
    """
    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for out, fn in zip(runs, fns):
            value = fn()
            if value is not None:
                out.append(value)
    return [statistics.median(r) if r else None for r in runs]


def run_sqlite(
    *,
    quick: bool = False,
    scale: float | None = None,
    repeat: int = 3,
    directory: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Figure]:
    """The event-log suite of issue 2 on SQLite at the default durability (synchronous=FULL).

    ``scale`` multiplies ``SQLITE_SIZES`` (default 1, or 0.2 with ``quick``).
    """
    sizes = _sizes(scale if scale is not None else (0.2 if quick else 1.0))
    say = progress or (lambda _msg: None)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(dir=directory) as d:
        ours_sync = ours_synchronous(d)
        es_sync = eventsourcing_synchronous(d)
        sync_note = f"synchronous={_SYNC_NAMES.get(ours_sync, ours_sync)}"
        if es_sync is not None:
            sync_note += f" (eventsourcing: {_SYNC_NAMES.get(es_sync, es_sync)})"

        say("single-event appends, 1 thread")
        n1 = sizes["single"]
        runs1: list[SingleRun] = []

        def ours1_run() -> float:
            runs1.append(ours_single_run(d, n1))
            return runs1[-1].rate

        ours1, raw1 = _alternate(ours1_run, lambda: raw_single_commits(d, n1), repeat=repeat)
        assert ours1 is not None and raw1 is not None
        commits1 = min(r.commits for r in runs1)
        figures.append(
            _figure(
                "single appends, 1 thread",
                ours1,
                "raw sqlite3 one-row commits",
                raw1,
                ">= 0.7 and <= 1.5",
                0.7,
                1.5,
                note=f"{sync_note}; {commits1:,} commits for {n1:,} appends; "
                "above 1.5 would mean an append does not sync",
            )
        )

        say("single-event appends, 8 threads")
        n8 = sizes["threads8"]
        runs8: list[SingleRun] = []

        def ours8() -> float:
            runs8.append(ours_single_run(d, n8, threads=8))
            return runs8[-1].rate

        o8, es_app1, es_rec1 = _alternate(
            ours8, lambda: eventsourcing_app_saves(d, n1, 1), lambda: eventsourcing_saves(d, n1, 1), repeat=repeat
        )
        assert o8 is not None
        per_commit = statistics.median(n8 / r.commits for r in runs8)
        # Where the time goes: a commit costs about one disk sync (a raw one-row commit), so the
        # syncs' share of the wall time is commits x (1 / raw1); the rest is Python holding the GIL
        # (validation, hashing, hand-offs between the threads). Without syncs, the GIL is the limit.
        sync_share = statistics.median(min(1.0, r.commits / raw1 / r.seconds) for r in runs8)
        nosync = statistics.median(ours_single_run(d, n8, threads=8, durability="process").rate for _ in range(repeat))
        handoff = statistics.median(thread_handoff_us() for _ in range(repeat))
        note8 = (
            f"{per_commit:.1f} events per commit; disk syncs ~{sync_share:.0%} of the time; "
            f"{nosync:,.0f}/s without syncs (GIL-bound); a thread hand-off takes {handoff:.0f} µs"
        )
        if es_app1 is not None:
            figures.append(
                _figure(
                    "single appends, 8 threads",
                    o8,
                    "eventsourcing Application, 1 event/save",
                    es_app1,
                    ">= 3 (aim 5)",
                    3.0,
                    note=note8,
                )
            )
        if es_rec1 is not None:
            figures.append(
                _figure(
                    "single appends, 8 threads",
                    o8,
                    "eventsourcing recorder, 1 pre-encoded event/save",
                    es_rec1,
                    "(for reference)",
                    note="its persistence alone: no aggregate, no encoding",
                )
            )
        figures.append(
            _figure(
                "single appends, 8 threads",
                o8,
                "raw sqlite3 one-row commits",
                raw1,
                "(group commit gain)",
                note=note8 if es_app1 is None else "",
            )
        )

        say("1,000-event batches")
        nb = sizes["batch1000"]
        oursb, rawb = _alternate(lambda: ours_batches(d, nb, 1000), lambda: raw_executemany(d, nb, 1000), repeat=repeat)
        assert oursb is not None and rawb is not None
        figures.append(_figure("1,000-event batches", oursb, "raw sqlite3 executemany(1000)", rawb, ">= 0.5", 0.5))

        say("100-event batches")
        n100 = sizes["batch100"]
        ours100, es_app100, es_rec100, raw100 = _alternate(
            lambda: ours_batches(d, n100, 100),
            lambda: eventsourcing_app_saves(d, n100, 100),
            lambda: eventsourcing_saves(d, n100, 100),
            lambda: raw_executemany(d, n100, 100),
            repeat=repeat,
        )
        assert ours100 is not None and raw100 is not None
        if es_app100 is not None:
            figures.append(
                _figure(
                    "100-event batches", ours100, "eventsourcing Application, 100 events/save", es_app100, ">= 1.2", 1.2
                )
            )
        if es_rec100 is not None:
            figures.append(
                _figure(
                    "100-event batches",
                    ours100,
                    "eventsourcing recorder, 100 pre-encoded/save",
                    es_rec100,
                    "(for reference)",
                    note="its persistence alone: no aggregate, no encoding",
                )
            )
        figures.append(_figure("100-event batches", ours100, "raw sqlite3 executemany(100)", raw100))

        say("verify")
        vpath = os.path.join(d, "verify.db")
        fill(vpath, sizes["verify"])
        oursv, rawv = _alternate(lambda: ours_verify(vpath), lambda: raw_hash_scan(vpath), repeat=repeat)
        assert oursv is not None and rawv is not None
        figures.append(
            _figure(
                "verify",
                oursv,
                "raw scan hashing every row",
                rawv,
                ">= 0.5",
                0.5,
                note="ours hashes each payload and entry: 2-3 SHA-256 per row",
            )
        )

        say("archive")
        figures.append(run_archive(vpath, d, repeat=repeat))
    return figures


def copy_seconds(src: str, dst: str) -> float:
    """Seconds for a plain copy of the database ``src`` (and its WAL, if any) to ``dst``, synced:
    the same-run baseline of backup, prune and archive (each syncs what it writes too)."""
    t = time.perf_counter()
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copyfile(src + suffix, dst + suffix)
            with open(dst + suffix, "rb+") as f:
                os.fsync(f.fileno())
    return time.perf_counter() - t


def run_archive(path: str, directory: str, *, repeat: int = 3) -> Figure:
    """``eventstore archive`` of the whole log at ``path`` (a checkpoint is signed first) against a
    plain, synced copy of the database file, alternately; target 100,000 events/s (issue 13)."""
    from eventstore.audit import archive, notes

    with EventStore.open(path) as store:
        n = store.backend.head()[0]
        store.checkpoint(notes.Signer("bench.example/log", notes.ALG_ED25519, bytes(32)))  # a fixed key: reruns agree
        size = [0]

        def ours() -> float:
            t = time.perf_counter()
            info = archive.write_archive(store, os.path.join(directory, "bench.archive.gz"), n, replace=True)
            size[0] = info.bytes
            return _rate(n, time.perf_counter() - t)

        def copy() -> float:
            return _rate(n, copy_seconds(path, os.path.join(directory, "bench.copy.db")))

        rate, base = _alternate(ours, copy, repeat=repeat)
    assert rate is not None and base is not None
    f = _figure(
        "archive",
        rate,
        "plain copy of the database file (synced)",
        base,
        ">= 100,000/s",
        note=f"{n:,} events; {size[0] / n:.0f} bytes/event archived vs {os.path.getsize(path) / n:.0f} in the database; "
        "every entry verified, gzip level 1",
    )
    return msgspec.structs.replace(f, met=rate >= 100_000)


def run_postgres(
    url: str, *, quick: bool = False, repeat: int = 3, progress: Callable[[str], None] | None = None
) -> list[Figure]:
    """Appends on PostgreSQL beside raw psycopg inserts (``url`` names an empty, disposable database)."""
    import psycopg

    scale = 0.2 if quick else 1.0
    n1, n8, nb = int(1000 * scale), int(4000 * scale), int(50_000 * scale)
    say = progress or (lambda _msg: None)

    def reset() -> None:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("DROP TABLE IF EXISTS raw_events")
            c.execute(
                "CREATE TABLE raw_events (position BIGINT PRIMARY KEY, stream_id TEXT, version BIGINT, "
                "type TEXT, data BYTEA, metadata BYTEA, data_digest BYTEA, metadata_digest BYTEA, "
                "recorded_at TEXT, prev_hash BYTEA, hash BYTEA, UNIQUE (stream_id, version))"
            )

    def raw(n: int, batch: int) -> float:
        reset()
        rows = [_raw_row(i + 1, "s", i + 1) for i in range(n)]
        with psycopg.connect(url, autocommit=True) as c:
            t = time.perf_counter()
            for k in range(0, n, batch):
                with c.transaction(), c.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO raw_events VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows[k : k + batch]
                    )
            return _rate(n, time.perf_counter() - t)

    def ours(n: int, threads: int = 1, batch: int = 1) -> float:
        with EventStore.open(url) as store:
            stream = uuid.uuid4().hex
            per = n // threads
            todo = [[events(batch, (k * per + j) * batch) for j in range(per // batch)] for k in range(threads)]

            def work(k: int) -> None:
                for b in todo[k]:
                    store.append(f"{stream}-{k}", b)

            t = time.perf_counter()
            ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
            for x in ts:
                x.start()
            for x in ts:
                x.join()
            return _rate(per // batch * batch * threads, time.perf_counter() - t)

    say("postgres: single appends, 1 writer")
    raw1 = _median(lambda: raw(n1, 1), repeat)
    f = [_figure("pg single appends, 1 writer", _median(lambda: ours(n1), repeat), "raw psycopg one-row commits", raw1)]
    say("postgres: single appends, 8 writers")
    f.append(
        _figure(
            "pg single appends, 8 writers",
            _median(lambda: ours(n8, threads=8), repeat),
            "raw psycopg one-row commits",
            raw1,
        )
    )
    say("postgres: 1,000-event batches")
    f.append(
        _figure(
            "pg 1,000-event batches",
            _median(lambda: ours(nb, batch=1000), repeat),
            "raw psycopg executemany(1000)",
            _median(lambda: raw(nb, 1000), repeat),
        )
    )
    return f


def run_projections(n: int = 100_000, *, directory: str | None = None) -> list[Figure]:
    """Rebuild throughput of all read models together, beside a plain decoded read of the same log:
    the plain mix, then the same mix with every event attributed to one of 7 agents (``agent_id``,
    as agents write it), which the ``agents`` read model indexes event by event."""
    from projections import Runner

    out = []
    for agents in (0, 7):
        with tempfile.TemporaryDirectory(dir=directory) as d:
            path = os.path.join(d, "proj.db")
            _fill_catalogue(path, n, agents)
            with EventStore.open(path) as store:
                t = time.perf_counter()
                count = sum(1 for _ in store.read_all(batch_size=2000))
                read_rate = _rate(count, time.perf_counter() - t)
                runner = Runner(store, batch_size=2000)
                t = time.perf_counter()
                runner.rebuild_many([p.name for p in runner.projections])
                rebuild_rate = _rate(count, time.perf_counter() - t)
        f = _figure(
            f"rebuild all {len(runner.projections)} read models ({count:,} events"
            + (f", each naming one of {agents} agents)" if agents else ")"),
            rebuild_rate,
            "read_all (decode only)",
            read_rate,
            ">= 50,000 events/s",
        )
        f.met = rebuild_rate >= 50_000
        out.append(f)
    return out


def catalogue_event(i: int, rng: Any) -> NewEvent:
    """The i-th event of the read-model benchmark's mix (sessions of 40 events each)."""
    s = f"s{i // 40}"
    k = i % 40
    if k == 0:
        ev = NewEvent(type="session.started", data={"session_id": s, "model": "m", "workspace": f"w{i // 4000}"})
    elif k in (36, 37, 38):  # workspaces, instances, memory: 3 events of 40
        ev = _entity_event(s, k, i)
    elif k == 39:
        ev = NewEvent(type="session.status_changed", data={"session_id": s, "status": "completed"})
    elif k % 4 == 1:
        ev = NewEvent(
            type="message.appended",
            data={
                "session_id": s,
                "message_id": f"{s}-{k}",
                "role": "assistant",
                "content": "x" * 100,
                "tokens_used": rng.randint(1, 500),
            },
        )
    elif k % 4 == 2:
        ev = NewEvent(
            type="tool.started",
            data={"session_id": s, "execution_id": f"{s}-{k}", "tool_name": "t", "input": {"q": k}},
        )
    elif k % 4 == 3:
        ev = NewEvent(
            type="tool.finished",
            data={"session_id": s, "execution_id": f"{s}-{k - 1}", "status": "completed", "duration_ms": 12.0},
        )
    else:
        ev = NewEvent(type="metric.recorded", data={"metric": "latency", "value": rng.random() * 100, "stage": "gen"})
    return ev


def _fill_catalogue(path: str, n: int, agents: int = 0) -> None:
    """The read-model mix; with ``agents``, every event's metadata names one of that many agents."""
    import random

    rng = random.Random(1)
    with EventStore.open(path, durability="process") as store:
        batch: list[NewEvent] = []
        for i in range(n):
            ev = catalogue_event(i, rng)
            if agents:
                ev = NewEvent(type=ev.type, data=ev.data, metadata={"agent_id": f"agent-{i % agents}"})
            batch.append(ev)
            if len(batch) == 1000:
                store.append(f"bench-{i // 1000}", batch)
                batch = []
        if batch:
            store.append("bench-last", batch)
        store.append(
            "slo",
            [
                NewEvent(
                    type="slo.defined",
                    data={
                        "slo_id": "p95",
                        "metric": "latency",
                        "objective": "p95",
                        "threshold": 90.0,
                        "severity": "warning",
                    },
                )
            ],
        )


def _entity_event(s: str, k: int, i: int) -> NewEvent:
    """A workspace, instance or memory event of the read-model mix (workspaces, instances, memory)."""
    if k == 36:
        if i % 4000 == 36:
            return NewEvent(type="workspace.created", data={"workspace_id": f"w{i // 4000}", "name": "repo"})
        return NewEvent(
            type="memory.set", data={"agent": f"a{i % 7}", "key": f"k{i % 50}", "value": {"session": s, "n": i}}
        )
    if k == 37:
        return NewEvent(
            type="instance.started",
            data={"session_id": s, "instance_id": "i1", "agent_name": "a", "runtime": "codex", "branch": "b"},
        )
    return NewEvent(
        type="instance.finished",
        data={"session_id": s, "instance_id": "i1", "status": "completed", "lines_added": 10, "files_changed": 2},
    )


def run_checkpoint(
    n: int = 1_000_000, *, directory: str | None = None, progress: Callable[[str], None] | None = None
) -> list[Figure]:
    """Checkpoint and proof times over ``n`` events once the tree is maintained, and the
    time an auditor takes to check each proof offline."""
    from eventstore.audit import merkle
    from eventstore.audit.notes import Signer, open_checkpoint
    from eventstore.audit.proofs import check_inclusion

    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(dir=directory) as d:
        path = os.path.join(d, "tree.db")
        say(f"filling {n:,} events")
        fill(path, n)
        with EventStore.open(path) as store:
            say("maintaining the tree")
            t = time.perf_counter()
            store.tree.sync()
            sync_rate = _rate(n, time.perf_counter() - t)
            signer = Signer.generate("bench.example/log")
            t = time.perf_counter()
            store.checkpoint(signer)  # an origin's first checkpoint verifies and hashes every entry
            first_s = time.perf_counter() - t
            for _ in range(10):
                store.append("tail", events(1000))
            store.append("tail", events(7))  # a tree size that is not a multiple of 16
            t = time.perf_counter()
            store.checkpoint(signer)  # a routine one: anchored on the first, verifies the 10,007 new entries
            checkpoint_s = time.perf_counter() - t
            t = time.perf_counter()
            store.tree_root(n // 3)
            root_s = time.perf_counter() - t
            k = 200
            positions = [1 + (i * 7919) % n for i in range(k)]
            t = time.perf_counter()
            for p in positions:
                store.prove_inclusion(p)
            inc_s = (time.perf_counter() - t) / k
            t = time.perf_counter()
            for p in positions:
                store.prove_consistency(p, n)
            con_s = (time.perf_counter() - t) / k
            size = store.head()[0]
            opened = open_checkpoint(store.checkpoint(signer).format(), signer.verifier)
            inclusion = [store.prove_inclusion(p, size) for p in positions]
            consistency = [store.prove_consistency(p, size) for p in positions]
            t = time.perf_counter()
            for proof in inclusion:  # what an auditor does offline
                check_inclusion(proof, opened)
            check_inc_s = (time.perf_counter() - t) / k
            t = time.perf_counter()
            for c in consistency:
                merkle.verify_consistency(
                    c.old_size,
                    c.new_size,
                    bytes.fromhex(c.old_root),
                    bytes.fromhex(c.new_root),
                    [bytes.fromhex(h) for h in c.hashes],
                )
            check_con_s = (time.perf_counter() - t) / k
            t = time.perf_counter()
            report = store.verify()
            verify_rate = _rate(report.checked, time.perf_counter() - t)
    return [
        _figure(f"tree maintenance ({n:,} events)", sync_rate, "verify (full rehash)", verify_rate),
        _duration(f"first checkpoint of an origin over {n:,} events (verifies every entry)", first_s, 2),
        _duration(f"checkpoint over {n + 10_007:,} events, 10,007 new since the last", checkpoint_s, 2, under_ms=1000),
        _duration("root at an arbitrary size", root_s, 2),
        _duration("inclusion proof", inc_s, under_ms=1),
        _duration("consistency proof", con_s, under_ms=1),
        _duration("offline check of an inclusion proof", check_inc_s),
        _duration("offline check of a consistency proof", check_con_s),
    ]


def _duration(case: str, seconds: float, digits: int = 3, under_ms: float | None = None) -> Figure:
    """A time in ms with no same-run baseline (checkpoints and proofs), against a target if any."""
    ms = seconds * 1000
    return Figure(
        case=case,
        ours=round(ms, digits),
        baseline="",
        base=0,
        ratio=0,
        target="" if under_ms is None else f"< {under_ms:g} ms",
        met=None if under_ms is None else ms < under_ms,
        unit="ms",
    )


__all__ = ["Figure", "run_checkpoint", "run_postgres", "run_projections", "run_sqlite"]
