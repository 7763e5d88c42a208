"""SQLite backend: the embedded default.

One write connection (used under the store's commit lock), one read connection
per thread. WAL mode lets readers go on while a writer commits; ``BEGIN
IMMEDIATE`` takes the write lock up front so concurrent processes queue on the
busy timeout instead of failing mid-transaction. ``synchronous=FULL`` (the
default durability) syncs the WAL on every commit, so an acknowledged append
survives power loss; ``durability="process"`` uses ``synchronous=NORMAL``, which
survives a crashed process but may lose the last commits on power loss.

``:memory:`` (also ``sqlite://:memory:``, ``sqlite::memory:``) is a private database in this
process's memory, for tests: SQLite's ``memdb`` VFS shared by name between this backend's
connections (a shared-cache ``mode=memory`` database would fail concurrent readers with "table
is locked" instead of waiting). No WAL there: a commit waits for running reads. It is gone when
the store closes. A missing parent directory of a database file is created.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from ..errors import BackendError, ConfigurationError, DatabaseDamaged, EventStoreError, ReadOnlyStore, StoreClosed
from ..records import AppliedMigration, Migration, Row
from .base import Backend, Tx, Writer

_SELECT = (
    "SELECT position, stream_id, version, type, data, metadata, data_digest, "
    "metadata_digest, recorded_at, prev_hash, hash, event_id FROM events"
)
_T = TypeVar("_T")
_INSERT = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
_as_rows = functools.partial(map, functools.partial(tuple.__new__, Row))
"""Fetched tuples as Rows, built in C: Row._make runs Python code per row, and verify reads every row."""
_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


MEMORY = ":memory:"


DEFAULT_CACHE_SIZE = -16000
"""``PRAGMA cache_size`` per connection (negative: KiB; positive: pages): 16 MB, SQLite's own is 2 MB.
Chosen from docs/performance.md, "SQLite pragmas"."""
DEFAULT_MMAP_SIZE = 0
"""``PRAGMA mmap_size`` in bytes (0: no memory-mapped I/O). Off by default although 256 MiB measured
faster (docs/performance.md, "SQLite pragmas"): with a mapping, an I/O error or a file truncated
under a reader reaches the process as SIGBUS instead of an error, and a damaged store must give a
verdict naming the position, never kill the auditor's process. Opt in with ``mmap_size=``."""
_PRAGMA_OPTIONS = ("cache_size", "mmap_size")


def url_options(url: str) -> tuple[str, dict[str, int]]:
    """Split ``?cache_size=N&mmap_size=N`` off a ``sqlite:`` URL: (URL without it, options).

    A plain path is taken as it is (a file name may contain '?'); an unknown or non-integer
    parameter is a ConfigurationError naming it.
    """
    if not url.startswith("sqlite:") or "?" not in url:
        return url, {}
    base, _, query = url.partition("?")
    options: dict[str, int] = {}
    for name, values in urllib.parse.parse_qs(query, keep_blank_values=True).items():
        if name not in _PRAGMA_OPTIONS:
            raise ConfigurationError(
                f"unknown SQLite URL parameter {name!r}: the parameters are {', '.join(_PRAGMA_OPTIONS)}"
            )
        try:
            options[name] = int(values[-1])
        except ValueError:
            raise ConfigurationError(f"SQLite URL parameter {name} must be an integer, not {values[-1]!r}") from None
    return base, options


def path_from_url(url: str) -> str:
    """The file path (or ``:memory:``) a SQLite URL names (without its ``?`` parameters).

    ``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs.db`` and ``sqlite:/abs.db`` -> ``/abs.db``;
    ``sqlite:rel.db`` -> ``rel.db``; ``:memory:``, ``sqlite://:memory:``, ``sqlite:///:memory:`` and
    ``sqlite::memory:`` -> ``:memory:``; a plain path as is.
    """
    url = url_options(url)[0]
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if rest == MEMORY:
            return MEMORY
        if not rest.startswith("/"):
            raise ConfigurationError(
                f"bad SQLite URL {url!r}: use sqlite:///relative.db, sqlite:////absolute.db or sqlite:/absolute.db"
            )
        path = rest[1:]
    elif url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
    else:
        path = url
    if not path:
        raise ConfigurationError(f"no SQLite database path in {url!r}")
    return path


_SQLITE_READONLY_DIRECTORY = 1544  # a WAL database whose -shm cannot be created
_DAMAGED = {11: "the database disk image is malformed"}  # SQLITE_CORRUPT
_UNDECODABLE = re.compile(r"Could not decode to UTF-8 column '([^']*)'")


def _reading(method: Callable[..., _T]) -> Callable[..., _T]:
    """Reads raise eventstore errors: DatabaseDamaged for bytes that cannot be read back, else BackendError."""

    @functools.wraps(method)
    def wrapper(self: SQLiteBackend, *args: Any) -> _T:
        try:
            return method(self, *args)
        except sqlite3.Error as e:
            raise self._read_error(e) from None
        except UnicodeEncodeError:
            raise ConfigurationError(
                "a name asked for is not valid UTF-8 text (undecodable bytes or a lone surrogate)"
            ) from None
        except OverflowError:  # a position or version beyond SQLite's integers: no such entry
            raise ConfigurationError(
                f"a position or version in {args!r} is beyond 2^63-1, the largest SQLite stores"
            ) from None

    return wrapper


def _split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (trigger bodies included)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(line.strip().startswith("--") for line in buf.strip().splitlines()):
        raise BackendError(f"incomplete SQL statement in migration: {buf.strip()[:80]!r}")
    return out


class _HeadCache:
    """The head and stream versions as of this connection's last commit.

    Valid only while ``PRAGMA data_version`` is unchanged, i.e. no other
    connection (or process) committed since: then two lookups per append are
    saved. Any other writer, or a failed commit, empties it.
    """

    def __init__(self) -> None:
        self.data_version: int | None = None
        self.head: tuple[int, bytes | None] | None = None
        self.versions: dict[str, int] = {}

    def clear(self) -> None:
        self.head = None
        self.versions.clear()


class _SQLiteWriter(Writer):
    def __init__(self, conn: sqlite3.Connection, cache: _HeadCache, path: str = ""):
        self.conn = conn
        self.conn_path = path
        self.cache = cache
        self.new_head: tuple[int, bytes] | None = None
        self.new_versions: dict[str, int] = {}

    def head(self) -> tuple[int, bytes | None]:
        if self.cache.head is None:
            row = self.conn.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
            self.cache.head = (0, None) if row is None else (row[0], row[1])
        return self.cache.head

    def stream_versions(self, stream_ids: Iterable[str]) -> dict[str, int]:
        known = self.cache.versions
        out = {}
        for s in stream_ids:
            v = known.get(s)
            if v is None:
                v = self.conn.execute("SELECT max(version) FROM events WHERE stream_id = ?", (s,)).fetchone()[0] or 0
            out[s] = v
        return out

    def insert(self, rows: Sequence[Row]) -> None:
        try:
            self.conn.executemany(_INSERT, rows)
        except sqlite3.Error as e:  # a CHECK or UNIQUE refused a row: nothing of this transaction commits
            raise BackendError(f"insert refused by {self.conn_path}: {e}") from None
        self.new_head = (rows[-1].position, rows[-1].hash)
        for r in rows:
            self.new_versions[r.stream_id] = r.version

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def find_ids(self, stream_id: str, event_ids: Sequence[str]) -> dict[str, Row]:
        marks = ",".join("?" * len(event_ids))
        cur = self.conn.execute(_SELECT + f" WHERE stream_id = ? AND event_id IN ({marks})", (stream_id, *event_ids))
        return {r.event_id: r for r in _as_rows(cur) if r.event_id is not None}


class _SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


class SQLiteBackend(Backend):
    dialect = "sqlite"

    def __init__(
        self,
        url: str,
        *,
        durability: Literal["full", "process"] = "full",
        busy_timeout: float = 30.0,
        create: bool = True,
        readonly: bool = False,
        cache_size: int | None = None,
        mmap_size: int | None = None,
    ):
        """``cache_size`` / ``mmap_size``: SQLite's page cache per connection (negative: KiB;
        positive: pages) and memory-mapped I/O in bytes, for every connection; also given as
        ``sqlite:///file.db?cache_size=-16000&mmap_size=268435456`` (the argument wins).
        Defaults: ``DEFAULT_CACHE_SIZE``, ``DEFAULT_MMAP_SIZE``, chosen from docs/performance.md."""
        self.url = url
        self.path = path_from_url(url)
        from_url = url_options(url)[1]
        pragmas = {"cache_size": DEFAULT_CACHE_SIZE, "mmap_size": DEFAULT_MMAP_SIZE} | from_url
        for name, value in (("cache_size", cache_size), ("mmap_size", mmap_size)):
            if value is not None:
                pragmas[name] = value
            if not isinstance(pragmas[name], int) or isinstance(pragmas[name], bool):
                raise ConfigurationError(f"{name} must be an integer, not {pragmas[name]!r}")
        if pragmas["mmap_size"] < 0:
            raise ConfigurationError(f"mmap_size must be >= 0 bytes, not {pragmas['mmap_size']}")
        self.cache_size = pragmas["cache_size"]
        self.mmap_size = pragmas["mmap_size"]
        self.readonly = readonly
        self.memory = self.path == MEMORY
        self._memory_uri = ""
        if self.memory:
            if readonly or not create:
                raise ConfigurationError(
                    "an in-memory database starts empty: it cannot be opened read-only or uncreated"
                )
            # one private memdb database per backend: every connection of this backend sees it,
            # no other backend does, and it lives until close() closes the last connection
            self._memory_uri = f"file:/eventstore-{uuid.uuid4().hex}?vfs=memdb"
        else:
            if (readonly or not create) and not os.path.exists(self.path):
                raise ConfigurationError(f"no database at {self.path!r} (run 'eventstore init' first)")
            if os.path.isdir(self.path):
                raise ConfigurationError(f"{self.path!r} is a directory, not a database file")
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                try:
                    os.makedirs(parent, exist_ok=True)
                except OSError as e:
                    raise ConfigurationError(
                        f"cannot create database {self.path!r}: cannot create directory {parent!r}: {e.strerror}"
                    ) from None
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._sync = {"full": "FULL", "process": "NORMAL"}[durability]
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._damage_found: tuple[int | None] | None = None
        self._wconn = self._connect()
        self._cache = _HeadCache()
        if readonly:
            return  # no journal_mode switch, no table: nothing is written (see _connect)
        try:
            self._wconn.execute("PRAGMA journal_mode=WAL")
            self._wconn.execute(_SCHEMA_TABLE)
        except sqlite3.Error as e:
            self._wconn.close()
            raise ConfigurationError(f"cannot open SQLite database {self.path!r}: {e}") from None

    def _connect(self) -> sqlite3.Connection:
        """A connection; read-only ones use ``mode=ro``, so SQLite itself refuses every write.

        ``mode=ro`` (not ``immutable=1``) keeps SQLite's locking: a reader sees a consistent
        snapshot while other processes append. On a WAL database SQLite may create empty
        ``-wal``/``-shm`` files for its read lock; the database file itself is never written.
        """
        try:
            if self.readonly:
                conn = self._connect_readonly()
            elif self.memory:
                conn = sqlite3.connect(
                    self._memory_uri, uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
            else:
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
            conn.execute(f"PRAGMA synchronous={self._sync}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA secure_delete=ON")  # zero freed content: destroyed keys, dropped read models
            conn.execute(f"PRAGMA cache_size={int(self.cache_size)}")
            conn.execute(f"PRAGMA mmap_size={int(self.mmap_size)}")
        except (sqlite3.Error, UnicodeError) as e:
            if (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF in _DAMAGED:  # e.g. the schema page
                raise DatabaseDamaged(f"{_DAMAGED[11]}: {self.path!r} cannot be opened") from None
            raise ConfigurationError(f"cannot open SQLite database {self.path!r}: {e}") from None
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        """``mode=ro``; ``immutable=1`` only where SQLite cannot take its WAL read lock because the
        directory is not writable (no ``-shm`` can be made) and no ``-wal`` exists: then no connection
        has the database open, and none of ours could write it (read-only media, an archived copy)."""
        uri = "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(self.path))) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", None) != _SQLITE_READONLY_DIRECTORY or os.path.exists(self.path + "-wal"):
                raise
            conn.close()
            conn = sqlite3.connect(
                uri + "&immutable=1", uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.DatabaseError:
            pass  # not a database, or damaged: the first read says so
        return conn

    def _read_error(self, e: sqlite3.Error) -> Exception:
        """Name what a failed read means; messages never quote stored values."""
        undecodable = _UNDECODABLE.match(str(e))
        if undecodable:
            return DatabaseDamaged(f"column {undecodable.group(1)!r} holds bytes that are not UTF-8 text")
        missing = re.match(r"no such table: (\w+)", str(e))
        if missing:
            return ConfigurationError(
                f"{self.path!r} is not an eventstore database (it has no {missing.group(1)} "
                "table; run 'eventstore init' or 'eventstore migrate up')"
            )
        code = getattr(e, "sqlite_errorcode", None)
        if code == 26:  # SQLITE_NOTADB: a wrong file given, not a damaged database
            return ConfigurationError(f"{self.path!r} is not a SQLite database")
        damage = _DAMAGED.get((code or 0) & 0xFF)
        if damage is None:
            return BackendError(f"reading {self.path!r} failed: {e}")
        if self._damage_found is None:  # quick_check reads the whole file: once per open
            self._damage_found = (self._damaged_page(),)
        page = self._damage_found[0]
        return DatabaseDamaged(f"{damage}" + (f" (page {page})" if page else ""), page=page)

    def _damaged_page(self) -> int | None:
        """The first damaged page SQLite's quick_check names (only run after a read failed)."""
        try:
            conn = self._connect()
        except EventStoreError:
            return None
        try:
            for (line,) in conn.execute("PRAGMA quick_check(10)"):
                m = re.search(r"\bpage (\d+)", str(line), re.IGNORECASE)
                if m:
                    return int(m.group(1))
        except sqlite3.Error:
            pass
        finally:
            conn.close()
        return None

    def _refuse_write(self) -> None:
        if self.readonly:
            raise ReadOnlyStore(f"{self.path!r} was opened read-only: nothing was written")

    def writable(self) -> bool:
        """Whether the database would accept appends from this process (through a read-write open,
        whatever this one is): it may write the file and its directory (the WAL and its index)."""
        if self.memory:
            return True
        parent = os.path.dirname(os.path.abspath(self.path))
        return os.access(self.path, os.W_OK) and os.access(parent, os.W_OK)

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreClosed("the store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # -- migrations ---------------------------------------------------------------
    @_reading
    def applied_migrations(self) -> list[AppliedMigration]:
        rows = (
            self._reader()
            .execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
            .fetchall()
        )
        return [AppliedMigration(*r) for r in rows]

    def apply_migration(self, migration: Migration, direction: Literal["up", "down"]) -> None:
        self._refuse_write()
        conn = self._wconn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = (
                conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone()
                is not None
            )
            if done == (direction == "up"):
                conn.execute("ROLLBACK")  # another process got there first
                return
            for stmt in _split_statements(migration.up if direction == "up" else migration.down):
                conn.execute(stmt)
            if direction == "up":
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?,?,?,?)",
                    (
                        migration.version,
                        migration.name,
                        migration.checksum,
                        datetime.now(UTC).isoformat(timespec="seconds"),
                    ),
                )
            else:
                conn.execute("DELETE FROM schema_migrations WHERE version = ?", (migration.version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- writes -------------------------------------------------------------------
    @contextmanager
    def write(self, stream_ids: Collection[str] = ()) -> Iterator[Writer]:
        # Held for the whole transaction, so that close() waits for a commit in flight: SQLite
        # crashes the process when a connection is closed while another thread is using it.
        # (Appends are already one at a time, through the group commit: the lock is uncontended.)
        with self._write_lock, self._write(stream_ids) as writer:
            yield writer

    @contextmanager
    def _write(self, stream_ids: Collection[str]) -> Iterator[Writer]:
        if self._closed:
            raise StoreClosed("the store is closed")
        self._refuse_write()
        conn = self._wconn
        cache = self._cache
        try:
            conn.execute("BEGIN IMMEDIATE")
            dv = conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.OperationalError as e:
            raise BackendError(f"cannot start a write transaction on {self.path!r}: {e}") from None
        if dv != cache.data_version:  # another connection committed: forget what we knew
            cache.clear()
            cache.data_version = dv
        writer = _SQLiteWriter(conn, cache, self.path)
        try:
            yield writer
        except BaseException:
            conn.execute("ROLLBACK")
            cache.clear()
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            cache.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise BackendError(f"commit failed on {self.path!r}: {e}") from None
        if writer.new_head is not None:
            cache.head = writer.new_head
            if len(cache.versions) > 100_000:
                cache.versions.clear()
            cache.versions.update(writer.new_versions)

    # -- reads --------------------------------------------------------------------
    @_reading
    def head(self) -> tuple[int, bytes | None]:
        row = self._reader().execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
        return (0, None) if row is None else (row[0], row[1])

    @_reading
    def read_range(self, from_position: int, to_position: int | None, limit: int) -> list[Row]:
        if to_position is None:
            cur = self._reader().execute(
                _SELECT + " WHERE position >= ? ORDER BY position LIMIT ?", (from_position, limit)
            )
        else:
            cur = self._reader().execute(
                _SELECT + " WHERE position >= ? AND position <= ? ORDER BY position LIMIT ?",
                (from_position, to_position, limit),
            )
        return list(_as_rows(cur))

    @_reading
    def read_stream(self, stream_id: str, from_version: int, limit: int) -> list[Row]:
        cur = self._reader().execute(
            _SELECT + " WHERE stream_id = ? AND version >= ? ORDER BY version LIMIT ?",
            (stream_id, from_version, limit),
        )
        return list(_as_rows(cur))

    @_reading
    def row_at(self, position: int) -> Row | None:
        r = self._reader().execute(_SELECT + " WHERE position = ?", (position,)).fetchone()
        return None if r is None else Row._make(r)

    def stream_version(self, stream_id: str) -> int:
        r = self._reader().execute("SELECT max(version) FROM events WHERE stream_id = ?", (stream_id,)).fetchone()
        return r[0] or 0

    @_reading
    def stream_position(self, stream_id: str, version: int) -> int | None:
        r = (
            self._reader()
            .execute("SELECT position FROM events WHERE stream_id = ? AND version = ?", (stream_id, version))
            .fetchone()
        )
        return None if r is None else r[0]

    @_reading
    def counts(self) -> tuple[int, int, dict[str, int]]:
        c = self._reader()
        n = c.execute("SELECT count(*) FROM events").fetchone()[0]
        streams = c.execute("SELECT count(DISTINCT stream_id) FROM events").fetchone()[0]
        types = dict(c.execute("SELECT type, count(*) FROM events GROUP BY type ORDER BY type").fetchall())
        return n, streams, types

    def size_bytes(self) -> int | None:
        if self.memory:
            return None
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    # -- other tables -------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        if self._closed:
            raise StoreClosed("the store is closed")
        self._refuse_write()
        conn = getattr(self._local, "tx_conn", None)
        if conn is None:
            conn = self._connect()
            self._local.tx_conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise BackendError(f"cannot start a transaction on {self.path!r}: {e}") from None
        try:
            yield _SQLiteTx(conn)
        except BaseException as e:
            if conn.in_transaction:  # SQLite may have rolled back already (e.g. a full disk)
                conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise BackendError(f"writing {self.path!r} failed, nothing was written: {e}") from None
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise BackendError(f"commit failed on {self.path!r}, nothing was written: {e}") from None

    @_reading
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._reader().execute(sql, params).fetchall()

    def purge_residue(self, timeout: float) -> bool:
        """Checkpoint the WAL into the database and truncate it: old page images (a destroyed
        key, read-model rows of a dropped generation) leave the -wal file. Cannot finish while
        another connection reads an older snapshot; waits up to ``timeout`` seconds."""
        if self._closed:
            raise StoreClosed("the store is closed")
        if self.memory:
            return True  # no files: nothing outlives close()
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error:
            busy = 1
        finally:
            conn.close()
        return busy == 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._readers_lock:
            for c in self._readers:
                c.close()
            self._readers.clear()
        with self._write_lock:
            self._wconn.close()
