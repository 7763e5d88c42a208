"""PostgreSQL backend: the same store for teams that outgrow one machine.

Appends are serialised by a transaction-scoped advisory lock
(``pg_advisory_xact_lock``) taken first in every append transaction. Positions
are therefore assigned in commit order: a writer reads the head only after the
previous writer committed, so a reader following the log by position never
passes a gap that fills later, and each hash knows its predecessor exactly. The
cost: one appending transaction at a time across all machines (group commit in
each process batches concurrent appends into one transaction to compensate);
readers are never blocked. See docs/postgres.md.

Durability ``"full"``: ``synchronous_commit = on`` (the commit is flushed to the
server's WAL before the receipt). ``"process"``: ``synchronous_commit = off``;
a server crash may lose the last acknowledged commits (never corrupts).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Literal

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg_pool import ConnectionPool

from ..errors import BackendError, ConfigurationError, StoreClosed
from ..migrate import AppliedMigration, Migration
from ..records import Row
from .base import Backend, Tx, Writer

APPEND_LOCK = 0x65766E7473746F72  # "evntstor": the advisory lock key serialising appends
MIGRATE_LOCK = APPEND_LOCK + 1
CHANNEL = "eventstore_appended"

_SELECT = (
    "SELECT position, stream_id, version, type, data, metadata, data_digest, "
    "metadata_digest, recorded_at, prev_hash, hash FROM events"
)
_INSERT = "INSERT INTO events VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
_COPY = ("COPY events (position, stream_id, version, type, data, metadata, data_digest, metadata_digest, "
         "recorded_at, prev_hash, hash) FROM STDIN")
COPY_THRESHOLD = 64
_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""
_QMARK = re.compile(r"\?")
_VERSIONS = "SELECT stream_id, max(version) FROM events WHERE stream_id = ANY(%s) GROUP BY stream_id"


def _versions(found: list[tuple[Any, ...]], ids: list[str]) -> dict[str, int]:
    got = dict(found)
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


def _row(r: Sequence[Any]) -> Row:
    return Row(r[0], r[1], r[2], r[3], None if r[4] is None else bytes(r[4]),
               None if r[5] is None else bytes(r[5]), bytes(r[6]), bytes(r[7]), r[8], bytes(r[9]), bytes(r[10]))


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
        readonly: bool = False,
    ):
        del create  # a PostgreSQL database is created by its administrator
        self.url = url
        self.readonly = readonly
        self.durability = durability
        self._closed = False
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection[Any] | None = None
        sync = "on" if durability == "full" else "off"
        # read-only: the server refuses every write on every connection
        ro = {"options": "-c default_transaction_read_only=on"} if readonly else {}
        try:
            self._wconn = psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout), **ro)
        except psycopg.OperationalError as e:
            raise ConfigurationError(f"cannot connect to PostgreSQL at {_where(url)}: "
                                     f"{str(e).strip().splitlines()[0]}") from None
        self._wconn.execute(f"SET synchronous_commit = {sync}")
        self.pool = ConnectionPool(url, min_size=pool_min, max_size=pool_max, kwargs={"autocommit": True, **ro},
                                   open=True, timeout=connect_timeout)
        if readonly:
            return
        with self._wconn.transaction():
            self._wconn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            self._wconn.execute(_SCHEMA_TABLE)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._check_open()
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    # -- migrations ---------------------------------------------------------------
    def applied_migrations(self) -> list[AppliedMigration]:
        rows = self._query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        return [AppliedMigration(*r) for r in rows]

    def apply_migration(self, migration: Migration, direction: Literal["up", "down"]) -> None:
        self._check_open()
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s",
                                (migration.version,)).fetchone() is not None
            if done == (direction == "up"):
                return  # another process got there first
            conn.execute(migration.up if direction == "up" else migration.down)  # type: ignore[arg-type]
            if direction == "up":
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s, %s)",
                             (migration.version, migration.name, migration.checksum,
                              datetime.now(timezone.utc).isoformat(timespec="seconds")))
            else:
                conn.execute("DELETE FROM schema_migrations WHERE version = %s", (migration.version,))

    # -- writes -------------------------------------------------------------------
    @contextmanager
    def write(self, stream_ids: Collection[str] = ()) -> Iterator[Writer]:
        self._check_open()
        conn = self._wconn
        ids = list(stream_ids)
        try:
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
                head_cur = conn.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
                versions_cur = conn.execute(_VERSIONS, (ids,)) if ids else None
            r = head_cur.fetchone()
            versions = _versions(versions_cur.fetchall(), ids) if versions_cur is not None else {}
        except psycopg.Error as e:
            self._rollback()
            raise BackendError(f"cannot start an append on {_where(self.url)}: {e}") from None
        w = _PgWriter(conn, (0, None) if r is None else (r[0], bytes(r[1])), versions)
        try:
            yield w
        except BaseException:
            self._rollback()
            raise
        try:
            big = len(w.rows) >= COPY_THRESHOLD
            if big:  # COPY is several times faster for big batches, but cannot be pipelined
                with conn.cursor() as c, c.copy(_COPY) as copy:
                    for row in w.rows:
                        copy.write_row(row)
            with conn.pipeline():
                if w.rows:
                    if not big:
                        with conn.cursor() as c:
                            c.executemany(_INSERT, w.rows)
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(w.rows[-1].position)))
                conn.execute("COMMIT")
        except psycopg.Error as e:
            self._rollback()
            raise BackendError(f"append failed on {_where(self.url)}, nothing was written: {e}") from None

    def _rollback(self) -> None:
        try:
            self._wconn.execute("ROLLBACK")
        except psycopg.Error:
            pass

    # -- reads --------------------------------------------------------------------
    def head(self) -> tuple[int, bytes | None]:
        r = self._query("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
        return (0, None) if not r else (r[0][0], bytes(r[0][1]))

    def read_range(self, from_position: int, to_position: int | None, limit: int) -> list[Row]:
        if to_position is None:
            rows = self._query(_SELECT + " WHERE position >= %s ORDER BY position LIMIT %s", (from_position, limit))
        else:
            rows = self._query(_SELECT + " WHERE position >= %s AND position <= %s ORDER BY position LIMIT %s",
                               (from_position, to_position, limit))
        return [_row(r) for r in rows]

    def read_stream(self, stream_id: str, from_version: int, limit: int) -> list[Row]:
        rows = self._query(_SELECT + " WHERE stream_id = %s AND version >= %s ORDER BY version LIMIT %s",
                           (stream_id, from_version, limit))
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
            raise BackendError(f"{_where(self.url)} was opened read-only")
        with self.pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._query(to_pyformat(sql), params)

    def purge_residue(self, timeout: float) -> bool:
        """VACUUM ``subject_keys`` so that the dead row version holding a destroyed key leaves the
        table's file. Needs ownership (or MAINTAIN on PostgreSQL 17+); otherwise autovacuum does it
        later and this returns False. WAL, archives, replicas and backups are out of reach (docs/events.md)."""
        self._check_open()
        with self.pool.connection() as conn:
            may = conn.execute("SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
                               "WHERE oid = to_regclass('subject_keys')").fetchone()
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
        """Wake on NOTIFY from an appending transaction instead of polling."""
        self._check_open()
        with self._listen_lock:
            if self._listener is None:
                self._listener = psycopg.connect(self.url, autocommit=True)
                self._listener.execute(f"LISTEN {CHANNEL}")
            if self.head()[0] > after_position:
                return
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.pool.close()
        self._wconn.close()
        if self._listener is not None:
            self._listener.close()
