"""PostgreSQL backend: the same store for teams that outgrow one machine.

Appends are serialised by ``LOCK TABLE append_lock IN EXCLUSIVE MODE`` taken
first in every append transaction (migration 0005; a database without it falls
back to the advisory lock used before). Only a role with UPDATE on
``append_lock`` can take that lock, so a read-only role cannot delay appends,
and ``lock_timeout`` bounds the wait of an append that cannot get it. Positions
are therefore assigned in commit order: a writer reads the head only after the
previous writer committed, so a reader following the log by position never
passes a gap that fills later, and each hash knows its predecessor exactly. The
cost: one appending transaction at a time across all machines (group commit in
each process batches concurrent appends into one transaction to compensate);
readers are never blocked. See docs/postgres.md.

Durability ``"full"``: ``synchronous_commit = on`` (the commit is flushed to the
server's WAL before the receipt). ``"process"``: ``synchronous_commit = off``;
a server crash may lose the last acknowledged commits (never corrupts).

Faults: a lost connection is re-made on the next call, with backoff for up to
``reconnect_timeout`` seconds. When the connection breaks while COMMIT is in
flight, the append reconnects and looks for its last row (position and exact
hash) under the append lock: found, the append succeeded; absent, nothing was
written; no answer, ``AppendOutcomeUnknown`` names what to look for.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import codec
from ..errors import AppendOutcomeUnknown, BackendError, ConfigurationError, MigrationError, ReadOnlyStore, StoreClosed
from ..records import AppliedMigration, Migration, Row
from .base import Backend, Tx, Writer

APPEND_LOCK = 0x65766E7473746F72  # "evntstor": the advisory lock key of databases before migration 0005
MIGRATE_LOCK = APPEND_LOCK + 1
_TABLE_LOCK = "LOCK TABLE append_lock IN EXCLUSIVE MODE"
_ADVISORY_LOCK = f"SELECT pg_advisory_xact_lock({APPEND_LOCK})"
CHANNEL = "eventstore_appended"

_SELECT = (
    "SELECT position, stream_id, version, type, data, metadata, data_digest, "
    "metadata_digest, recorded_at, prev_hash, hash, event_id FROM events"
)
_INSERT = "INSERT INTO events VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
_COPY = (
    "COPY events (position, stream_id, version, type, data, metadata, data_digest, metadata_digest, "
    "recorded_at, prev_hash, hash, event_id) FROM STDIN"
)
COPY_THRESHOLD = 64
_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""
_QMARK = re.compile(r"\?")
_VERSIONS = (
    "SELECT s.id, (SELECT e.version FROM events e WHERE e.stream_id = s.id ORDER BY e.version DESC LIMIT 1) "
    "FROM unnest(%s::text[]) AS s(id)"
)
"""The current version of each stream: one backward step of the (stream_id, version) index per
stream. (``max(version) ... WHERE stream_id = ANY(...) GROUP BY`` was planned as a bitmap scan
of every version of those streams, so appends got slower as their streams grew.)"""


def _versions(found: list[tuple[Any, ...]], ids: list[str]) -> dict[str, int]:
    got = {s: v for s, v in found if v is not None}
    return {s: got.get(s, 0) for s in ids}


def to_pyformat(sql: str) -> str:
    """Translate '?' placeholders to psycopg's '%s' (outside string literals), escaping '%'."""
    parts = sql.replace("%", "%%").split("'")  # psycopg reads '%' inside string literals too
    for i in range(0, len(parts), 2):
        parts[i] = _QMARK.sub("%s", parts[i])
    return "'".join(parts)


def _where(url: str) -> str:
    """host:port/dbname of a URL, without the password, for error messages."""
    try:
        d = pg_conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable URL)"
    return f"{d.get('host', 'localhost')}:{d.get('port', 5432)}/{d.get('dbname', '')}"


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _lost(conn: psycopg.Connection[Any] | None, e: BaseException) -> bool:
    """True when ``e`` means the connection is gone (not an error the server reported in a live session)."""
    if conn is not None and conn.broken:
        return True
    state = getattr(e, "sqlstate", None)
    # 08: connection exception; 57P01-3: admin/crash shutdown, cannot connect now (restarting).
    return isinstance(e, psycopg.OperationalError) and (state is None or state.startswith(("08", "57P")))


def _seconds_ms(name: str, value: float) -> int:
    if not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"{name} must be a number of seconds >= 0 (0: no limit), not {value!r}")
    return int(value * 1000)


class _CanonicalJsonText(Loader):
    """A ``jsonb`` value as canonical JSON text (``codec.encode``), as the read models wrote it
    and as SQLite's TEXT columns return it: jsonb's own text output spaces and reorders keys."""

    def load(self, data: Any) -> str:
        return codec.encode(codec.decode(bytes(data))).decode()


def _json_as_text(conn: psycopg.Connection[Any]) -> None:
    """``jsonb`` columns (read models') are read as canonical JSON text on both backends: the same
    values, and a row read back can be written again as it is."""
    conn.adapters.register_loader("jsonb", _CanonicalJsonText)
    conn.adapters.register_loader("json", _CanonicalJsonText)


def _row(r: Sequence[Any]) -> Row:
    return Row(
        r[0],
        r[1],
        r[2],
        r[3],
        None if r[4] is None else bytes(r[4]),
        None if r[5] is None else bytes(r[5]),
        bytes(r[6]),
        bytes(r[7]),
        r[8],
        bytes(r[9]),
        bytes(r[10]),
        r[11],
    )


class _PgWriter(Writer):
    """Append-transaction operations, batched into few round trips.

    BEGIN, the lock and the head read travel in one pipeline when the
    transaction opens; the inserts, the NOTIFY and COMMIT in another at its end.
    """

    def __init__(self, conn: psycopg.Connection[Any], head: tuple[int, bytes | None], versions: dict[str, int]):
        self.conn = conn
        self._head = head
        self._versions = versions
        self.rows: Sequence[Row] = ()

    def head(self) -> tuple[int, bytes | None]:
        return self._head

    def stream_versions(self, stream_ids: Iterable[str]) -> dict[str, int]:
        ids = list(stream_ids)
        missing = [s for s in ids if s not in self._versions]
        if missing:
            self._versions.update(_versions(self.conn.execute(_VERSIONS, (missing,)).fetchall(), missing))
        return {s: self._versions[s] for s in ids}

    def insert(self, rows: Sequence[Row]) -> None:
        self.rows = rows  # sent with COMMIT, in one pipeline

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(to_pyformat(sql), params)

    def find_ids(self, stream_id: str, event_ids: Sequence[str]) -> dict[str, Row]:
        found = self.conn.execute(
            _SELECT + " WHERE stream_id = %s AND event_id = ANY(%s)", (stream_id, list(event_ids))
        )
        return {r.event_id: r for r in map(_row, found.fetchall()) if r.event_id is not None}


class _PgTx(Tx):
    def __init__(self, conn: psycopg.Connection[Any]):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(to_pyformat(sql), params)
        return cur.fetchall() if cur.description is not None else []

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(to_pyformat(sql), list(rows))


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        durability: Literal["full", "process"] = "full",
        create: bool = True,
        pool_min: int = 1,
        pool_max: int = 8,
        connect_timeout: float = 10.0,
        lock_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        reconnect_timeout: float = 5.0,
        readonly: bool = False,
    ):
        del create  # a PostgreSQL database is created by its administrator
        self.url = url
        self.readonly = readonly
        # read-only: the server refuses every write on every connection
        self._conn_kwargs: dict[str, Any] = {"options": "-c default_transaction_read_only=on"} if readonly else {}
        self.durability = durability
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        self.reconnect_timeout = reconnect_timeout
        self.connect_timeout = connect_timeout
        # Settings of the append connection, sent in one round trip when it connects. An
        # orphaned append transaction (a client hung between its two round trips) is ended by
        # the server after statement_timeout, releasing the append lock.
        self._settings = {
            "synchronous_commit": "on" if durability == "full" else "off",
            "lock_timeout": str(_seconds_ms("lock_timeout", lock_timeout)),
            "statement_timeout": str(_seconds_ms("statement_timeout", statement_timeout)),
            "idle_in_transaction_session_timeout": str(_seconds_ms("statement_timeout", statement_timeout)),
        }
        _seconds_ms("reconnect_timeout", reconnect_timeout)
        self._closed = False
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection[Any] | None = None
        self._lock_sql: str | None = None  # chosen on the first append (migration 0005 or not)
        try:
            self._wconn: psycopg.Connection[Any] | None = self._open_writer()
        except psycopg.OperationalError as e:
            raise ConfigurationError(f"cannot connect to PostgreSQL at {_where(url)}: {_first_line(e)}") from None
        self._pool_size = (pool_min, pool_max)
        self._pool_lock = threading.Lock()
        self._outage = False  # a lost connection was seen and the pool not yet replaced
        self.pool = self._new_pool()
        if readonly:
            return
        try:
            self._ensure_schema_table()
        except BaseException:
            self.close()
            raise

    def _ensure_schema_table(self) -> None:
        """Create schema_migrations on first use only: a role without CREATE (appender, auditor)
        opens a migrated store by reading it."""
        conn = self._wconn
        assert conn is not None
        try:
            if conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone() == (True,):
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                conn.execute(_SCHEMA_TABLE)
        except psycopg.Error as e:
            raise MigrationError(
                f"cannot create schema_migrations on {_where(self.url)} (a new store is created "
                f"by its owner: run 'eventstore init' as the owner): {_first_line(e)}"
            ) from None

    def _open_writer(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self.url, autocommit=True, connect_timeout=max(2, int(self.connect_timeout)), **self._conn_kwargs
        )
        try:
            names = list(self._settings)
            conn.execute(
                "SELECT " + ", ".join(["set_config(%s, %s, false)"] * len(names)),
                [x for n in names for x in (n, self._settings[n])],
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _writer(self, deadline: float | None = None) -> psycopg.Connection[Any]:
        """The append connection, re-made with backoff until ``deadline`` if it was lost."""
        if self._wconn is not None and not self._wconn.closed:
            return self._wconn
        self._wconn = None
        deadline = time.monotonic() + self.reconnect_timeout if deadline is None else deadline
        delay = 0.05
        while True:
            try:
                self._wconn = self._open_writer()
                return self._wconn
            except psycopg.Error as e:
                if time.monotonic() + delay > deadline:
                    raise BackendError(
                        f"cannot reach PostgreSQL at {_where(self.url)} (tried for "
                        f"{self.reconnect_timeout:g} s): {_first_line(e)}"
                    ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _drop_writer(self) -> None:
        self._outage = True  # the pooled connections are likely gone too
        conn, self._wconn = self._wconn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    def _new_pool(self) -> ConnectionPool:
        return ConnectionPool(
            self.url,
            min_size=self._pool_size[0],
            max_size=self._pool_size[1],
            kwargs={"autocommit": True, **self._conn_kwargs},
            configure=_json_as_text,
            open=True,
            timeout=self.connect_timeout,
        )

    def _acquire(self, check: bool) -> tuple[ConnectionPool, psycopg.Connection[Any]]:
        """A pooled connection, waiting (with backoff, up to reconnect_timeout) while the server is down.

        ``check``: test it first (one round trip) when the caller cannot simply repeat its work.
        Without a lost connection seen, a pool slow to hand one out is busy, not down: that
        waits up to connect_timeout, as before.
        """
        start = time.monotonic()
        delay = 0.05
        while True:
            pool = self.pool
            conn = None
            try:
                conn = pool.getconn(timeout=0.5)
                if check:
                    pool.check_connection(conn)
                return pool, conn
            except PoolTimeout as e:
                if not self._outage:  # all connections busy, or a slow connect: wait, as before
                    if time.monotonic() - start < self.connect_timeout:
                        continue
                    raise BackendError(
                        f"no free connection to {_where(self.url)} within connect_timeout "
                        f"({self.connect_timeout:g} s): {_first_line(e)}"
                    ) from None
                error: psycopg.Error = e
            except psycopg.Error as e:
                if conn is not None:
                    pool.putconn(conn)  # a broken one is discarded
                if not _lost(conn, e):
                    raise BackendError(f"cannot use a connection to {_where(self.url)}: {_first_line(e)}") from None
                error = e
            self._recover(pool)
            if time.monotonic() + delay > start + self.reconnect_timeout:
                raise BackendError(
                    f"cannot reach PostgreSQL at {_where(self.url)} (tried for "
                    f"{self.reconnect_timeout:g} s): {_first_line(error)}"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _recover(self, pool: ConnectionPool) -> None:
        """After a lost connection: if the server answers, replace the pool.

        A restart breaks every pooled connection, and psycopg_pool re-connects with
        exponential backoff (1, 2, 4, ... s), which would keep reads failing long after
        the server is back; a new pool connects at once.
        """
        self._outage = True
        try:
            psycopg.connect(self.url, connect_timeout=max(2, int(self.connect_timeout))).close()
        except psycopg.Error:
            return  # still down
        with self._pool_lock:
            if self.pool is not pool or self._closed:
                return  # another thread replaced it
            self.pool = self._new_pool()
            self._outage = False
        # Closing joins the old pool's workers, which may sleep in a backoff: not on this thread.
        threading.Thread(target=pool.close, daemon=True).start()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read on a pooled connection; repeated on a new connection when the connection was lost."""
        self._check_open()
        for attempt in (1, 2, 3):
            pool, conn = self._acquire(check=False)
            try:
                return conn.execute(sql, params).fetchall()
            except psycopg.Error as e:
                if not _lost(conn, e):
                    raise BackendError(f"query failed on {_where(self.url)}: {_first_line(e)}") from None
                if attempt == 3:
                    raise BackendError(
                        f"query failed on {_where(self.url)}, the connection was lost: {_first_line(e)}"
                    ) from None
                self._recover(pool)
            finally:
                pool.putconn(conn)
        raise AssertionError("unreachable")

    # -- migrations ---------------------------------------------------------------
    def applied_migrations(self) -> list[AppliedMigration]:
        rows = self._query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        return [AppliedMigration(*r) for r in rows]

    def apply_migration(self, migration: Migration, direction: Literal["up", "down"]) -> None:
        self._check_open()
        self._lock_sql = None  # 0005 may add or remove append_lock
        try:
            with self.pool.connection(timeout=self.connect_timeout) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                done = (
                    conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)).fetchone()
                    is not None
                )
                if done == (direction == "up"):
                    return  # another process got there first
                conn.execute(migration.up if direction == "up" else migration.down)
                if direction == "up":
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (%s, %s, %s, %s)",
                        (
                            migration.version,
                            migration.name,
                            migration.checksum,
                            datetime.now(UTC).isoformat(timespec="seconds"),
                        ),
                    )
                else:
                    conn.execute("DELETE FROM schema_migrations WHERE version = %s", (migration.version,))
        except psycopg.Error as e:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} ({direction}) failed on "
                f"{_where(self.url)}, nothing was changed (migrations are run by the owner of the "
                f"store's tables): {_first_line(e)}"
            ) from None

    # -- writes -------------------------------------------------------------------
    def _lock_statement(self, conn: psycopg.Connection[Any]) -> str:
        if self._lock_sql is None:
            have = conn.execute("SELECT to_regclass('append_lock') IS NOT NULL").fetchone() == (True,)
            self._lock_sql = _TABLE_LOCK if have else _ADVISORY_LOCK
        return self._lock_sql

    def _start_error(self, e: psycopg.Error) -> BackendError:
        where = _where(self.url)
        if e.sqlstate == "55P03":
            return BackendError(
                f"append gave up on {where} after lock_timeout ({self.lock_timeout:g} s): another "
                "transaction holds the append lock (see pg_locks for relation append_lock); "
                "nothing was written"
            )
        if e.sqlstate == "42501":
            return BackendError(
                f"append refused on {where}: this role may not append ({_first_line(e)}); nothing was written"
            )
        return BackendError(f"cannot start an append on {where}, nothing was written: {_first_line(e)}")

    def writable(self) -> bool:
        """Whether the database would accept appends from this role (through a read-write open,
        whatever this one is): a primary (not a standby in recovery), and INSERT on ``events``."""
        r = self._query("SELECT NOT pg_is_in_recovery() AND has_table_privilege('events', 'INSERT')")
        return bool(r and r[0][0])

    @contextmanager
    def write(self, stream_ids: Collection[str] = ()) -> Iterator[Writer]:
        self._check_open()
        if self.readonly:
            raise ReadOnlyStore(f"{_where(self.url)} was opened read-only: nothing was written")
        ids = list(stream_ids)
        for attempt in (1, 2):
            conn = self._writer()
            try:
                lock = self._lock_statement(conn)
                with conn.pipeline():
                    conn.execute("BEGIN")
                    conn.execute(lock)
                    head_cur = conn.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
                    versions_cur = conn.execute(_VERSIONS, (ids,)) if ids else None
                r = head_cur.fetchone()
                versions = _versions(versions_cur.fetchall(), ids) if versions_cur is not None else {}
                break
            except psycopg.Error as e:
                if _lost(conn, e):
                    self._drop_writer()
                    if attempt == 1:
                        continue  # a stale connection (the server restarted): nothing was sent that writes
                else:
                    self._rollback()
                raise self._start_error(e) from None
        w = _PgWriter(conn, (0, None) if r is None else (r[0], bytes(r[1])), versions)
        try:
            yield w
        except BaseException:
            self._rollback()
            raise
        if not w.rows:
            self._finish(conn, w.rows)
            return
        big = len(w.rows) >= COPY_THRESHOLD
        if big:  # COPY is several times faster for big batches, but cannot be pipelined
            try:
                with conn.cursor() as c, c.copy(_COPY) as copy:
                    for row in w.rows:
                        copy.write_row(row)
            except psycopg.Error as e:  # COMMIT was not sent: the server rolls back
                self._rollback()
                raise BackendError(
                    f"append failed on {_where(self.url)}, nothing was written: {_first_line(e)}"
                ) from None
        self._finish(conn, w.rows, insert=not big)

    def _finish(self, conn: psycopg.Connection[Any], rows: Sequence[Row], insert: bool = False) -> None:
        """Send the inserts (unless COPY did), the NOTIFY and COMMIT in one pipeline."""
        try:
            with conn.pipeline():
                if rows:
                    if insert:
                        with conn.cursor() as c:
                            c.executemany(_INSERT, rows)
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(rows[-1].position)))
                conn.execute("COMMIT")
        except psycopg.Error as e:
            if not _lost(conn, e):  # the server answered: the transaction was rolled back
                self._rollback()
                raise BackendError(
                    f"append failed on {_where(self.url)}, nothing was written: {_first_line(e)}"
                ) from None
            self._drop_writer()
            if rows:
                self._resolve(rows, e)

    def _resolve(self, rows: Sequence[Row], cause: psycopg.Error) -> None:
        """The connection broke with COMMIT in flight: find out whether it committed.

        Under the append lock (so an orphaned transaction has finished one way or the
        other) the row at the last position either has this append's exact hash or not.
        Returns if it committed; raises otherwise.
        """
        first, last = rows[0], rows[-1]
        where = _where(self.url)
        try:
            conn = self._writer()
            try:
                with conn.transaction():
                    conn.execute(self._lock_statement(conn))
                    found = conn.execute("SELECT hash FROM events WHERE position = %s", (last.position,)).fetchone()
            except psycopg.Error:
                if conn.broken:
                    self._drop_writer()
                raise
        except (psycopg.Error, BackendError) as e:
            raise AppendOutcomeUnknown(
                f"the connection to {where} broke while committing positions {first.position}..{last.position} "
                f"({_first_line(cause)}) and checking failed ({_first_line(e)}): the outcome is unknown. The append "
                f"committed if the log has hash {last.hash.hex()} at position {last.position} (eventstore read "
                f"--from {last.position} --limit 1); retry only if it does not",
                first_position=first.position,
                last_position=last.position,
                last_hash=last.hash.hex(),
            ) from None
        if found is not None and bytes(found[0]) == last.hash:
            return
        raise BackendError(
            f"append failed on {where}: the connection broke before the commit completed "
            f"({_first_line(cause)}); the log does not have it, nothing was written (safe to retry)"
        )

    def _rollback(self) -> None:
        conn = self._wconn
        if conn is None:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            if conn.broken:
                self._drop_writer()

    # -- reads --------------------------------------------------------------------
    def head(self) -> tuple[int, bytes | None]:
        r = self._query("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
        return (0, None) if not r else (r[0][0], bytes(r[0][1]))

    def read_range(self, from_position: int, to_position: int | None, limit: int) -> list[Row]:
        if to_position is None:
            rows = self._query(_SELECT + " WHERE position >= %s ORDER BY position LIMIT %s", (from_position, limit))
        else:
            rows = self._query(
                _SELECT + " WHERE position >= %s AND position <= %s ORDER BY position LIMIT %s",
                (from_position, to_position, limit),
            )
        return [_row(r) for r in rows]

    def read_stream(self, stream_id: str, from_version: int, limit: int) -> list[Row]:
        rows = self._query(
            _SELECT + " WHERE stream_id = %s AND version >= %s ORDER BY version LIMIT %s",
            (stream_id, from_version, limit),
        )
        return [_row(r) for r in rows]

    def row_at(self, position: int) -> Row | None:
        rows = self._query(_SELECT + " WHERE position = %s", (position,))
        return _row(rows[0]) if rows else None

    def stream_version(self, stream_id: str) -> int:
        return self._query("SELECT max(version) FROM events WHERE stream_id = %s", (stream_id,))[0][0] or 0

    def stream_position(self, stream_id: str, version: int) -> int | None:
        r = self._query("SELECT position FROM events WHERE stream_id = %s AND version = %s", (stream_id, version))
        return r[0][0] if r else None

    def counts(self) -> tuple[int, int, dict[str, int]]:
        n = self._query("SELECT count(*) FROM events")[0][0]
        streams = self._query("SELECT count(DISTINCT stream_id) FROM events")[0][0]
        types = dict(self._query("SELECT type, count(*) FROM events GROUP BY type ORDER BY type"))
        return n, streams, types

    def size_bytes(self) -> int | None:
        return self._query("SELECT pg_total_relation_size('events')")[0][0]

    # -- other tables -------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        self._check_open()
        if self.readonly:
            raise ReadOnlyStore(f"{_where(self.url)} was opened read-only: nothing was written")
        pool, conn = self._acquire(check=True)
        try:
            with conn.transaction():
                yield _PgTx(conn)
        except psycopg.Error as e:
            if not _lost(conn, e):
                raise BackendError(
                    f"transaction on {_where(self.url)} failed and was rolled back: {_first_line(e)}"
                ) from None
            self._recover(pool)
            raise BackendError(
                f"transaction on {_where(self.url)}: the connection was lost, so it may or may "
                f"not have committed: {_first_line(e)}"
            ) from None
        finally:
            pool.putconn(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._query(to_pyformat(sql), params)

    def purge_residue(self, timeout: float) -> bool:
        """VACUUM ``subject_keys`` so that the dead row version holding a destroyed key leaves the
        table's file. Needs ownership (or MAINTAIN on PostgreSQL 17+); otherwise autovacuum does it
        later and this returns False. WAL, archives, replicas and backups are out of reach (docs/events.md)."""
        self._check_open()
        with self.pool.connection() as conn:
            may = conn.execute(
                "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
                "WHERE oid = to_regclass('subject_keys')"
            ).fetchone()
            if not may or not may[0]:
                return False
            try:
                conn.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
                conn.execute("VACUUM subject_keys")
                conn.execute("RESET lock_timeout")
            except psycopg.Error:
                return False
        return True

    def wait_for_append(self, after_position: int, timeout: float) -> None:
        """Wake on NOTIFY from an appending transaction instead of polling.

        A lost LISTEN connection is re-made within ``timeout``; while the server is down
        this waits out ``timeout`` and returns (the caller's next read reports the outage).
        """
        self._check_open()
        deadline = time.monotonic() + timeout
        with self._listen_lock:
            while True:
                try:
                    if self._listener is None:
                        self._listener = psycopg.connect(
                            self.url, autocommit=True, connect_timeout=max(2, int(self.connect_timeout))
                        )
                        self._listener.execute(f"LISTEN {CHANNEL}")
                    if self.head()[0] > after_position:
                        return
                    remaining = deadline - time.monotonic()
                    if remaining > 0:
                        for _ in self._listener.notifies(timeout=remaining, stop_after=1):
                            pass
                    return
                except (psycopg.Error, BackendError):
                    if self._listener is not None:
                        self._listener.close()
                        self._listener = None
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    time.sleep(min(0.2, remaining))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.pool.close()
        if self._wconn is not None:
            self._wconn.close()
        if self._listener is not None:
            self._listener.close()
