"""The small interface every storage backend implements.

The store (``eventstore.store``) owns the log's rules: validation, expected-version
checks, hash chaining and group commit. A backend only moves rows in and out of
its database, inside the transactions the store asks for. One contract test suite
(tests/backends) runs against every backend.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

from ..records import AppliedMigration, Migration, Row


class Writer(ABC):
    """Operations available inside one exclusive append transaction."""

    @abstractmethod
    def head(self) -> tuple[int, bytes | None]:
        """(position, hash) of the last entry; (0, None) for an empty log."""

    @abstractmethod
    def stream_versions(self, stream_ids: Iterable[str]) -> dict[str, int]:
        """Current version of each stream (0 when it has no events)."""

    @abstractmethod
    def insert(self, rows: Sequence[Row]) -> None:
        """Insert rows, already chained, in position order."""

    @abstractmethod
    def find_ids(self, stream_id: str, event_ids: Sequence[str]) -> dict[str, Row]:
        """The committed rows of ``stream_id`` that carry these event ids, by id (for idempotent retries)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (``?`` placeholders) in this transaction: it commits with the rows or not at all."""
        raise NotImplementedError(f"{type(self).__name__} cannot run statements in an append")


class Tx(ABC):
    """A read-write transaction for tables other than ``events`` (read models, trees, leases).

    SQL uses ``?`` placeholders on every backend and portable types (TEXT, BIGINT,
    DOUBLE PRECISION); the backend adapts the parameter style.
    """

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; return its rows (empty for statements without results)."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


class Backend(ABC):
    """A database holding the ``events`` table."""

    dialect: str
    url: str
    readonly: bool = False
    """Opened read-only (``EventStore.open(readonly=True)``): every write raises."""
    durability: Literal["full", "process"] = "full"
    options: dict[str, Any] = {}
    """The backend options it was opened with (``open_backend``), to open it again elsewhere."""

    # -- migrations ---------------------------------------------------------------
    @abstractmethod
    def applied_migrations(self) -> list[AppliedMigration]: ...

    @abstractmethod
    def apply_migration(self, migration: Migration, direction: Literal["up", "down"]) -> None:
        """Run one migration and record it, atomically; a no-op if another process already did."""

    # -- writes -------------------------------------------------------------------
    @abstractmethod
    def write(self, stream_ids: Collection[str] = ()) -> AbstractContextManager[Writer]:
        """An exclusive append transaction: committed durably on normal exit, rolled back on error.

        ``stream_ids`` are the streams about to be appended to, so that a backend
        may fetch their versions together with the head (fewer round trips).
        """

    # -- reads --------------------------------------------------------------------
    @abstractmethod
    def head(self) -> tuple[int, bytes | None]: ...

    @abstractmethod
    def read_range(self, from_position: int, to_position: int | None, limit: int) -> list[Row]:
        """Rows with ``from_position <= position [<= to_position]`` in order, at most ``limit``."""

    @abstractmethod
    def read_stream(self, stream_id: str, from_version: int, limit: int) -> list[Row]: ...

    @abstractmethod
    def row_at(self, position: int) -> Row | None: ...

    @abstractmethod
    def stream_version(self, stream_id: str) -> int: ...

    @abstractmethod
    def stream_position(self, stream_id: str, version: int) -> int | None:
        """Position of one stream version, or None (used by partial verification)."""

    @abstractmethod
    def counts(self) -> tuple[int, int, dict[str, int]]:
        """(events, streams, events per type)."""

    @abstractmethod
    def size_bytes(self) -> int | None: ...

    # -- other tables -------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]:
        """A read-write transaction on its own connection (not the append connection)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only query (``?`` placeholders) on this thread's read connection."""

    def writable(self) -> bool:
        """Whether the database would accept appends through a read-write open (``EventStore.health``)."""
        return True

    def purge_residue(self, timeout: float) -> bool:
        """Remove stale copies of overwritten or deleted rows (destroyed keys) from the store's
        files where the database allows; True when none is left (EventStore.purge_residue)."""
        return True

    def wait_for_append(self, after_position: int, timeout: float) -> None:
        """Block until the head passes ``after_position`` or ``timeout`` seconds pass.

        The default polls; backends with notifications (PostgreSQL LISTEN) override it.
        """
        deadline = time.monotonic() + timeout
        while self.head()[0] <= after_position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.05, remaining))

    @abstractmethod
    def close(self) -> None: ...
