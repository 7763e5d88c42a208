"""Group commit: many threads' appends share one transaction and one disk sync.

Appenders queue requests; whichever caller finds no leader becomes it and commits
everything queued so far in one transaction (waiting up to ``GROUP_WAIT`` for appenders
still preparing, PostgreSQL's ``commit_delay`` idea); each request keeps its own
expected-version check and gets its own receipts, built by its caller after the commit
is durable. Invariants:

* a receipt is returned only for rows of a committed transaction;
* one caller's bad request never fails another's: a shared batch that fails as a whole
  is retried request by request (never when the outcome is unknown);
* an atomic request (``append_many``, ``erase``) commits alone: all of it or nothing,
  together with its side statements (``effects``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .backends.base import Backend
from .clock import utc_now
from .errors import AppendOutcomeUnknown, BackendError, EventIdConflict, EventStoreError, WrongExpectedVersion
from .hashing import GENESIS_HASH, hash_from_parts, lp
from .records import Receipt, Row

if TYPE_CHECKING:
    from .mapping import Prepared

GROUP_WAIT = 0.0005
"""Longest a commit leader waits for appenders still preparing (seconds); see ``submit``."""


class Request:
    """One caller's append to one stream, queued for a group commit; ``rows`` once committed."""

    __slots__ = ("stream_id", "expected", "events", "ids", "done", "rows", "error", "effects")

    def __init__(self, stream_id: str, expected: int | None, events: list[Prepared]):
        self.stream_id = stream_id
        self.expected = expected
        self.events = events
        self.ids = [e.id for e in events if e.id is not None]
        """Event ids to look up for a retry: built by the caller, not by the commit leader."""
        self.done = False
        self.rows: list[Row] = []  # what was committed, once done
        self.error: BaseException | None = None
        self.effects: Sequence[tuple[str, Sequence[Any]]] = ()
        """Statements run in the append transaction (atomic requests only): see ``erase``."""


class GroupCommit:
    """The commit queue of one store (thread-safe)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # followers wait here for a commit to finish
        self._arrived = threading.Condition(lock)  # the leader waits here for more requests
        self._pending: list[Request] = []
        self._leading = False
        self._appenders = 0  # threads inside append(), preparing or waiting

    def enter(self) -> None:
        """An appender starts preparing: a leader may wait for it (see ``submit``)."""
        with self._cond:
            self._appenders += 1

    def leave(self) -> None:
        """The appender is done (committed or failed)."""
        with self._cond:
            self._appenders -= 1
            if self._leading and self._pending and len(self._pending) >= self._appenders:
                self._arrived.notify()  # the batch the leader waits for is complete

    def submit(self, reqs: list[Request], atomic: bool = False) -> list[list[Receipt]]:
        """Queue requests and wait until a leader (perhaps this thread) has committed them.

        The leader waits up to GROUP_WAIT for appenders that are still preparing
        their events (PostgreSQL's commit_delay idea), so that concurrent appends
        share a sync instead of taking turns. A multi-stream atomic batch commits
        alone, so that one failure rolls back all of it.
        """
        cond = self._cond
        with cond:
            if not atomic:
                self._pending.extend(reqs)
                # Wake the leader only once the batch it waits for is complete: a wake-up per
                # arrival would hand the GIL to the leader and back for every append.
                if self._leading and len(self._pending) >= self._appenders:
                    self._arrived.notify()  # only the leader listens: followers are not woken
            while not reqs[-1].done:
                if self._leading:
                    cond.wait()
                    continue
                self._leading = True
                if atomic:
                    batch = reqs
                else:
                    deadline = time.monotonic() + GROUP_WAIT
                    while len(self._pending) < self._appenders:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._arrived.wait(remaining)
                    batch, self._pending = self._pending, []
                cond.release()
                try:
                    self.commit(batch, atomic=atomic)
                finally:
                    cond.acquire()
                    self._leading = False
                    cond.notify_all()
        for r in reqs:
            if r.error is not None:
                raise r.error
        # Receipts are built by each caller, not the leader: this overlaps the next commit's sync.
        return [
            [
                Receipt(
                    position=row.position,
                    stream_id=row.stream_id,
                    version=row.version,
                    hash=row.hash.hex(),
                    prev_hash=row.prev_hash.hex(),
                    recorded_at=row.recorded_at,
                )
                for row in r.rows
            ]
            for r in reqs
        ]

    def commit(self, batch: list[Request], atomic: bool = False) -> None:
        """Commit a batch and mark each request done, with its rows or its error.

        If a shared (non-atomic) batch fails as a whole, each of its requests is
        retried alone, in its own transaction, so that only the request the database
        refused fails: one caller's bad request never fails the appends of others.
        Retrying is safe because the backends report a failed append transaction as
        one that wrote nothing only when it did not commit (SQLite rolls back a failed
        COMMIT; PostgreSQL checks the log after a lost connection). When the outcome is
        unknown (``AppendOutcomeUnknown``) nothing is retried: every request gets that error.
        """
        try:
            error = self._write(batch, atomic)
            if error is not None:
                if atomic or len(batch) == 1 or isinstance(error, AppendOutcomeUnknown):
                    for req in batch:
                        if atomic or not isinstance(req.error, WrongExpectedVersion):
                            req.error = error
                else:
                    for req in batch:
                        # Also re-check a version mismatch: it was judged against rows now rolled back.
                        req.error = None
                        req.error = self._write([req], False) or req.error
        except BaseException as e:  # e.g. KeyboardInterrupt: no request may look committed unless it is
            for req in batch:
                if req.error is None and not req.rows:
                    req.error = e
            raise
        finally:
            for req in batch:
                req.done = True

    def _write(self, batch: list[Request], atomic: bool) -> EventStoreError | None:
        """One append transaction for ``batch``; returns the error that failed all of it, if any.

        Requests whose expected version does not match get their own
        ``WrongExpectedVersion`` (and fail the whole batch if ``atomic``). Rows are
        kept on a request only if the transaction committed.
        """
        recorded_at = utc_now()
        try:
            streams = {r.stream_id for r in batch}
            with self.backend.write(streams) as w:
                position, prev = w.head()
                prev = prev or GENESIS_HASH
                versions = w.stream_versions(streams)
                rows: list[Row] = []
                # Rows are built with tuple.__new__, which makes the same Row as Row(...) without
                # running the Python-level __new__ that namedtuple generates (once per event).
                entry_hash_of, new_row = hash_from_parts, tuple.__new__
                rec_lp = lp(recorded_at)
                for req in batch:
                    stream_id = req.stream_id
                    if req.ids:
                        found = w.find_ids(stream_id, req.ids)
                        if found:  # a retry of a committed append: its original rows, nothing written
                            try:
                                req.rows = _originals(req, found)
                            except EventIdConflict as e:
                                req.error = e
                                if atomic:
                                    raise
                            continue
                    version = versions[stream_id]
                    if req.expected is not None and req.expected != version:
                        req.error = WrongExpectedVersion(stream_id, req.expected, version)
                        if atomic:
                            raise req.error
                        continue
                    stream_lp = lp(stream_id)
                    first = len(rows)
                    for ev in req.events:
                        position += 1
                        version += 1
                        h = entry_hash_of(
                            position,
                            version,
                            stream_lp,
                            ev.type_lp,
                            rec_lp,
                            ev.data_digest,
                            ev.metadata_digest,
                            prev,
                            ev.id_lp,
                        )
                        rows.append(
                            new_row(
                                Row,
                                (
                                    position,
                                    stream_id,
                                    version,
                                    ev.type,
                                    ev.data,
                                    ev.metadata,
                                    ev.data_digest,
                                    ev.metadata_digest,
                                    recorded_at,
                                    prev,
                                    h,
                                    ev.id,
                                ),
                            )
                        )
                        prev = h
                    versions[stream_id] = version
                    req.rows = rows[first:]
                if rows:
                    w.insert(rows)
                if atomic:  # statements that must commit with these rows, or not at all
                    for req in batch:
                        for sql, params in req.effects:
                            w.execute(sql, params)
        except BaseException as e:
            for req in batch:
                req.rows = []
            if not isinstance(e, Exception):
                for req in batch:
                    req.error = e
                raise
            if isinstance(e, EventStoreError):
                return e
            return BackendError(f"append failed, nothing was written: {type(e).__name__}: {e}")
        return None


def _originals(req: Request, found: dict[str, Row]) -> list[Row]:
    """The committed rows a retried request stands for, in its order; EventIdConflict if the
    request is not a whole retry (some ids new, an id on another type of event)."""
    out = []
    for ev in req.events:
        row = found.get(ev.id) if ev.id is not None else None
        if row is None:
            held = ", ".join(f"{i!r} (position {r.position})" for i, r in sorted(found.items()))
            raise EventIdConflict(
                f"stream {req.stream_id!r} already holds event ids {held} of this append but not the others: "
                "a retry must resend exactly the events of the first attempt"
            )
        if row.type != ev.type:
            raise EventIdConflict(
                f"event id {ev.id!r} of stream {req.stream_id!r} names a {row.type!r} event (position "
                f"{row.position}), not a {ev.type!r} event"
            )
        out.append(row)
    return out
