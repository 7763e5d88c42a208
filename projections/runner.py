"""The projector runner: catch-up, follow, leases, rebuilds and status.

* Each projection has generations; the active one's tables sit behind public
  views (``sessions`` -> ``sessions__g2``). A rebuild fills the next generation
  from position 1 beside the live one, then swaps the views in one transaction:
  readers never see a half-built model, and live projection goes on meanwhile.
* Read-model rows and the projection's checkpoint are written in one
  transaction, so a crash neither skips nor double-applies an event.
* A worker owns a projection through a lease (``owner``, ``lease_until``) that it
  renews with every batch; the checkpoint update is fenced on the owner, so a
  worker that lost its lease cannot commit. A dead worker's lease expires and
  another worker takes over.
* A handler that raises stops its projection at that event (state ``failed``,
  with the position and the error); the others go on. So does an event whose
  stored payload cannot be read (``RecordedEvent.unreadable``) of a type it reads.
* A batch transaction is bounded (``max_transaction_seconds``): on SQLite, where
  it holds the database's single write lock, a watchdog rolls back a batch whose
  handler stalls, so appends wait at most that long; on PostgreSQL the server
  ends a transaction left idle that long. A process stopped outright (SIGSTOP)
  inside its transaction cannot be rolled back from outside: see docs/projections.md.
* A checkpoint past the log head (the log was restored from an older backup or
  cut) stops the projection in state ``ahead``: its read model holds events the
  log no longer has, so it is rebuilt explicitly, never resumed silently.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple

import msgspec

from eventstore import EventStore
from eventstore.backends.base import Tx
from eventstore.clock import utc_now as _now
from eventstore.errors import (
    BackendError,
    LeaseLost,  # noqa: F401  (defined in eventstore.errors, the one hierarchy)
    UserError,
)
from eventstore.records import RecordedEvent

from .base import Projection, Tables, View

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)

PROBLEM_STATES = ("failed", "ahead")
"""Persisted states that stop a projection until an operator acts (fix and rerun, or rebuild)."""


StoredState = Literal["idle", "running", "failed", "rebuilding", "ahead"]
"""``projection_state.state``: what a worker last recorded for a generation."""
Status = Literal["caught up", "behind", "failed", "ahead of log", "stale (version changed: will rebuild)"]
"""``ProjectionStatus.state``: what ``project status`` reports (docs/projections.md)."""


class StateRow(NamedTuple):
    """One row of ``projection_state``: one generation of one projection."""

    generation: int
    version: int
    active: int
    position: int
    state: StoredState
    error: str | None
    error_position: int | None
    needs_rebuild: int
    owner: str | None
    lease_until: float | None


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    generation: int
    checkpoint: int
    head: int
    lag: int
    state: Status
    error: str | None = None
    error_position: int | None = None
    owner: str | None = None
    rebuilding: int | None = None
    """Checkpoint of a rebuild in progress beside the live generation, if any."""

    @property
    def ok(self) -> bool:
        """False when the projection needs attention: failed, ahead of the log, or stale."""
        return self.state in ("caught up", "behind")


def physical(table: str, generation: int) -> str:
    return f"{table}__g{generation}"


class _Overran(LeaseLost):
    """The batch transaction overran ``max_transaction_seconds`` and was rolled back; retry smaller."""


def _is_busy(e: BaseException) -> bool:
    """Whether ``e`` says the database was locked by another writer (SQLite's busy timeout ran out)."""
    return isinstance(e, (sqlite3.OperationalError, BackendError)) and "locked" in str(e)


class _Guarded(Tx):
    """A batch transaction that a watchdog can end: once ``kill`` ran, every statement raises.

    The lock makes "check, then execute" atomic against the watchdog's rollback, so
    no statement can slip in after the rollback and commit on its own (autocommit).
    """

    def __init__(self, tx: Tx):
        self.tx = tx
        self.dead = False
        self.lock = threading.Lock()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            if self.dead:
                raise LeaseLost("the batch transaction ran out of time and was rolled back")
            return self.tx.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.lock:
            if self.dead:
                raise LeaseLost("the batch transaction ran out of time and was rolled back")
            self.tx.executemany(sql, rows)

    def kill(self) -> None:
        """Watchdog: roll the SQLite transaction back, releasing the write lock."""
        self.dead = True
        conn: sqlite3.Connection = self.tx.conn  # type: ignore[attr-defined]
        conn.interrupt()  # a long statement stops at once
        with self.lock:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the owner rolled back first


class Runner:
    """Runs projections against one store. Safe to run several at once (leases)."""

    def __init__(
        self,
        store: EventStore,
        projections: Sequence[Projection] | None = None,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        batch_size: int = 2000,
        max_transaction_seconds: float | None = None,
    ):
        """``max_transaction_seconds`` (default: half the lease) bounds one batch transaction;
        a batch that overruns is rolled back and retried with half as many events."""
        from . import all_projections, all_views
        from .installed import installed_projections

        self.store = store
        self.backend = store.backend
        if projections is None:  # the built-in read models and the installed ones (docs/extending.md)
            builtin = all_projections()
            projections = builtin + installed_projections(builtin)
        self.projections = list(projections)
        self.by_name = {p.name: p for p in self.projections}
        self.views: list[View] = all_views()
        """Views across read models, recreated whenever a table they read is swapped."""
        self._owners = {t: p.name for p in [*all_projections(), *self.projections] for t in p.tables}
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self.max_transaction_seconds = max_transaction_seconds or lease_seconds / 2
        self._batch = batch_size  # shrinks after a batch overran max_transaction_seconds
        self.stopped: set[str] = set()
        """Projections that failed in this runner: not retried until a new run."""
        self.ensure()

    # -- state ---------------------------------------------------------------------
    def _rows(self, name: str) -> list[StateRow]:
        return [
            StateRow(*r)
            for r in self.backend.query(
                "SELECT generation, version, active, position, state, error, error_position, needs_rebuild, owner, "
                "lease_until FROM projection_state WHERE name = ? ORDER BY generation",
                (name,),
            )
        ]

    def _active(self, name: str) -> StateRow | None:
        return next((r for r in self._rows(name) if r.active), None)

    def ensure(self) -> None:
        """Create generation 1 (tables and views) for projections that have none."""
        if self.backend.readonly:  # project status on a read-only open: report what exists
            return
        for p in self.projections:
            if self._rows(p.name):
                continue
            with self.backend.transaction() as tx:
                if tx.execute("SELECT 1 FROM projection_state WHERE name = ?", (p.name,)):
                    continue  # another worker created it
                self._create_generation(tx, p, 1, active=True)
                self._point_views(tx, p, 1)

    def _create_generation(self, tx: Tx, p: Projection, generation: int, *, active: bool) -> None:
        names = {t: physical(t, generation) for t in p.tables}
        for t in names.values():
            tx.execute(f"DROP TABLE IF EXISTS {t}")
        for stmt in p.statements(names, self.backend.dialect):
            tx.execute(stmt)
        tx.execute(
            "INSERT INTO projection_state (name, generation, version, active, position, state, updated_at) "
            "VALUES (?, ?, ?, ?, 0, ?, ?)",
            (p.name, generation, p.version, 1 if active else 0, "idle" if active else "rebuilding", _now()),
        )

    def _point_views(self, tx: Tx, p: Projection, generation: int) -> None:
        dependents = self._drop_dependents(tx, p)  # cross-model views first, then p's own derived views
        for v in p.views:
            tx.execute(f"DROP VIEW IF EXISTS {v}")
        for t in p.tables:
            tx.execute(f"DROP VIEW IF EXISTS {t}")
            tx.execute(f"CREATE VIEW {t} AS SELECT * FROM {physical(t, generation)}")
        for v, select in p.views.items():
            tx.execute(f"CREATE VIEW {v} AS {select}")
        for view in dependents:  # once every table it reads exists
            owners = {self._owners.get(t) for t in view.requires if t not in p.tables}
            if None not in owners and all(
                tx.execute("SELECT 1 FROM projection_state WHERE name = ? AND active = 1", (o,)) for o in owners
            ):
                tx.execute(view.create(self.backend.dialect))

    def _drop_dependents(self, tx: Tx, p: Projection) -> list[View]:
        """Drop the cross-model views that read ``p``'s tables (recreated by ``_point_views``)."""
        dependents = [v for v in self.views if set(v.requires) & set(p.tables)]
        for v in dependents:
            tx.execute(f"DROP VIEW IF EXISTS {v.name}")
        return dependents

    def _lease(self, name: str, generation: int) -> bool:
        """Take or renew the lease on one generation of a projection."""
        return name in self._lease_many([(name, generation)])

    def _lease_many(self, wanted: Sequence[tuple[str, int]]) -> set[str]:
        """Take or renew the leases on (name, generation) pairs, in one transaction (one commit
        per batch, not one per projection); returns the names now leased to this worker."""
        now = time.time()
        got: set[str] = set()
        try:
            with self.backend.transaction() as tx:
                for name, generation in wanted:
                    if tx.execute(
                        "UPDATE projection_state SET owner = ?, lease_until = ? WHERE name = ? AND generation = ? "
                        "AND (owner IS NULL OR owner = ? OR lease_until < ?) RETURNING name",
                        (self.worker_id, now + self.lease_seconds, name, generation, self.worker_id, now),
                    ):
                        got.add(name)
        except Exception as e:
            if not _is_busy(e):
                raise
            # Another process holds the database (SQLite's single writer) beyond the busy
            # timeout, e.g. a stalled worker: not ours this round; try again later.
            log.warning("projections %s: database busy, leases not taken (%s)", ", ".join(n for n, _ in wanted), e)
            return set()
        return got

    def release(self) -> None:
        """Give up this worker's leases (on clean shutdown) so others need not wait."""
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE projection_state SET owner = NULL, lease_until = NULL WHERE owner = ?", (self.worker_id,)
            )

    # -- catch-up ------------------------------------------------------------------
    def run_once(self, progress: Progress | None = None) -> dict[str, int]:
        """Catch every projection this worker can lease up to the head; return events applied.

        Projections whose version changed, or that saw an erasure, are rebuilt first.
        """
        applied = {p.name: 0 for p in self.projections}
        stale = [
            p.name
            for p in self.projections
            if (row := self._active(p.name)) is not None and (row.version != p.version or row.needs_rebuild)
        ]
        if stale:
            self.rebuild_many(stale, progress=progress)
        head = self.backend.head()[0]
        while True:
            rows = [(p, self._active(p.name)) for p in self.projections if p.name not in self.stopped]
            now_head = self.backend.head()[0]  # read after the checkpoints: a checkpoint past it is real
            ready: list[tuple[Projection, StateRow]] = []
            for p, row in rows:
                if row is None:
                    continue
                if row.state == "ahead" or row.position > now_head:
                    self._stop_ahead(p.name, row.generation, now_head)
                    continue
                ready.append((p, row))
            leased = self._lease_many([(p.name, row.generation) for p, row in ready])
            owned = [(p, row.generation, row.position) for p, row in ready if p.name in leased]
            if not owned:
                return applied
            start = min(pos for _, _, pos in owned) + 1
            events = list(self.store.read_all(start, to_position=start + self._batch - 1, batch_size=self._batch))
            if not events:
                return applied
            try:
                counts = self._apply_batch(owned, events)
            except LeaseLost:
                continue
            except Exception as e:
                if not _is_busy(e):
                    raise
                log.warning("projection batch at %d: database busy, retrying later (%s)", start, e)
                return applied
            for name, n in counts.items():
                applied[name] += n
            erased = [p.name for p, _, _ in owned if (row := self._active(p.name)) is not None and row.needs_rebuild]
            if erased:  # an erasure: rebuild so erased fields leave the read models
                self.rebuild_many(erased, progress=progress)
            if progress:
                progress(events[-1].position, max(head, events[-1].position))

    def _stop_ahead(self, name: str, generation: int, head: int) -> None:
        """Stop a projection whose checkpoint is past the log head (state ``ahead``), once."""
        self.stopped.add(name)
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE projection_state SET state = 'ahead', error = ?, error_position = position, updated_at = ? "
                "WHERE name = ? AND generation = ? AND position > ? AND state <> 'ahead'",
                (
                    (
                        f"checkpoint is past the log head ({head}): the log was restored from an older backup or cut; "
                        f"the read model holds events the log no longer has: run 'eventstore project rebuild {name}'"
                    ),
                    _now(),
                    name,
                    generation,
                    head,
                ),
            )

    def _apply_batch(self, owned: list[tuple[Projection, int, int]], events: list[RecordedEvent]) -> dict[str, int]:
        """Apply one batch to every owned projection in a single, time-bounded transaction."""
        sqlite = self.backend.dialect == "sqlite"
        watchdog: threading.Timer | None = None
        guard: _Guarded | None = None
        try:
            with self.backend.transaction() as raw:
                if sqlite:
                    guard = _Guarded(raw)
                    watchdog = threading.Timer(self.max_transaction_seconds, guard.kill)
                    watchdog.daemon = True
                    watchdog.start()
                    tx: Tx = guard
                else:  # PostgreSQL ends this transaction if its worker stalls (and releases its row locks)
                    raw.execute(
                        f"SET LOCAL idle_in_transaction_session_timeout = "
                        f"{max(1, int(self.max_transaction_seconds * 1000))}"
                    )
                    tx = raw
                counts = self._apply_in(tx, owned, events)
        except Exception as e:
            if guard is not None and guard.dead:
                self._batch = max(1, self._batch // 2)
                log.warning(
                    "projection batch of %d events overran %.1fs and was rolled back; next batch: %d events (%s)",
                    len(events),
                    self.max_transaction_seconds,
                    self._batch,
                    e,
                )
                raise _Overran("the batch transaction overran its time") from None
            if not sqlite and type(e).__module__.startswith("psycopg"):  # e.g. ended by the idle timeout
                raise BackendError(f"projection batch rolled back: {str(e).strip()}") from None
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
                watchdog.join()  # a rollback in progress ends before the next transaction starts
        return counts

    def _apply_in(
        self, tx: Tx, owned: list[tuple[Projection, int, int]], events: list[RecordedEvent]
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        last = events[-1].position
        unreadable = [e for e in events if e.unreadable]  # once per batch, not per projection
        # A pruned event (retention) has no payload left to project: read models skip it, but for
        # the types they ask for (``Projection.pruned_types``).
        pruned = any(e.pruned for e in events)
        live = [e for e in events if not e.pruned] if pruned else events
        erasures = [e for e in events if e.type == "subject.erased"]
        for p, generation, position in owned:
            # Each projection takes only events past its own checkpoint: projections at
            # different checkpoints share one read of the log.
            types = p.types
            source = live
            if pruned and p.pruned_types:
                keep = p.pruned_types
                source = [e for e in events if not e.pruned or e.type in keep]
            fresh = (
                source if not source or source[0].position > position else [e for e in source if e.position > position]
            )
            mine = [e for e in fresh if e.type in types] if types else list(fresh)
            bad = next((e for e in mine if e.unreadable), None) if unreadable else None
            if bad is not None:  # an undecodable payload fails the projection at that event
                mine = mine[: mine.index(bad)]
            db = Tables(tx, {t: physical(t, generation) for t in p.tables})
            failed_at, error = self._apply_isolated(tx, p, mine, db)
            if failed_at is None and bad is not None:
                failed_at, error = bad.position, f"event cannot be read: {bad.unreadable}"
            erased = p.personal and any(
                e.position > position and (failed_at is None or e.position < failed_at) for e in erasures
            )
            if failed_at is None:
                counts[p.name] = len(mine)
                done = self._checkpoint(tx, p.name, generation, last, erased)
            else:
                counts[p.name] = sum(1 for e in mine if e.position < failed_at)
                done = self._checkpoint(tx, p.name, generation, failed_at - 1, erased, failed_at, error)
                self.stopped.add(p.name)
            if not done:
                raise LeaseLost(p.name)
        return counts

    def _checkpoint(
        self,
        tx: Tx,
        name: str,
        generation: int,
        position: int,
        erased: bool,
        failed_at: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Move the checkpoint, in the batch's transaction, fenced on this worker's lease.

        Returns False (and the caller rolls the batch back) if another worker owns it now.
        """
        if failed_at is None:
            done = tx.execute(
                "UPDATE projection_state SET position = ?, state = 'running', error = NULL, "
                "error_position = NULL, needs_rebuild = CASE WHEN ? = 1 THEN 1 ELSE needs_rebuild END, "
                "updated_at = ? WHERE name = ? AND generation = ? AND owner = ? RETURNING name",
                (position, 1 if erased else 0, _now(), name, generation, self.worker_id),
            )
        else:
            done = tx.execute(
                "UPDATE projection_state SET position = ?, state = 'failed', error = ?, error_position = ?, "
                "needs_rebuild = CASE WHEN ? = 1 THEN 1 ELSE needs_rebuild END, updated_at = ? "
                "WHERE name = ? AND generation = ? AND owner = ? RETURNING name",
                (position, error, failed_at, 1 if erased else 0, _now(), name, generation, self.worker_id),
            )
        return bool(done)

    def _apply_isolated(
        self, tx: Tx, p: Projection, events: list[RecordedEvent], db: Tables
    ) -> tuple[int | None, str | None]:
        """Apply events; on an error, keep what precedes the failing event and report it."""
        if not events:
            return None, None
        tx.execute("SAVEPOINT projection_batch")
        try:
            p.apply(events, db)
            tx.execute("RELEASE SAVEPOINT projection_batch")
            return None, None
        except Exception:
            tx.execute("ROLLBACK TO SAVEPOINT projection_batch")
            tx.execute("RELEASE SAVEPOINT projection_batch")
        for e in events:  # find the failing event, one at a time
            tx.execute("SAVEPOINT projection_event")
            try:
                p.apply([e], db)
                tx.execute("RELEASE SAVEPOINT projection_event")
            except Exception as exc:
                tx.execute("ROLLBACK TO SAVEPOINT projection_event")
                tx.execute("RELEASE SAVEPOINT projection_event")
                return e.position, f"{type(exc).__name__}: {exc}"
        return None, None  # pragma: no cover - the batch failed but no single event did

    def follow(
        self,
        stop: threading.Event | None = None,
        *,
        poll: float = 1.0,
        on_batch: Callable[[dict[str, int]], None] | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        """Catch up, then keep following the live tail until ``stop`` is set.

        A database outage (``BackendError``: PostgreSQL restarting, a connection lost
        mid-batch) is logged and retried with backoff up to ``max_backoff`` seconds; the
        batch in flight rolled back, so nothing is skipped or applied twice.
        """
        stop = stop or threading.Event()
        backoff = 0.0
        while not stop.is_set():
            try:
                try:
                    applied = self.run_once()
                except LeaseLost:
                    applied = {}
                if on_batch and any(applied.values()):
                    on_batch(applied)
                head = self.backend.head()[0]
                backoff = 0.0
            except BackendError as e:
                backoff = min(max_backoff, backoff * 2 or 0.1)
                log.warning("projector %s: database unavailable (%s); retrying in %.1f s", self.worker_id, e, backoff)
                stop.wait(backoff)
                continue
            try:
                self.backend.wait_for_append(head, poll)
            except BackendError:
                stop.wait(min(poll, max_backoff))

    # -- rebuild -------------------------------------------------------------------
    def rebuild(self, name: str, progress: Progress | None = None) -> int:
        """Rebuild one projection beside the live one, then swap it in; return its checkpoint."""
        return self.rebuild_many([name], progress=progress)[name]

    def rebuild_many(self, names: Sequence[str], progress: Progress | None = None) -> dict[str, int]:
        """Rebuild projections beside the live ones in one pass over the log, then swap each in."""
        unknown = [n for n in names if n not in self.by_name]
        if unknown:
            raise UserError(f"no projection named {unknown[0]!r}; known: {', '.join(sorted(self.by_name))}")
        building: dict[str, int] = {}  # name -> new generation
        for name in names:
            p = self.by_name[name]
            rows = self._rows(name)
            generation = max((r.generation for r in rows), default=0) + 1
            with self.backend.transaction() as tx:
                for r in rows:  # abandon an earlier unfinished rebuild
                    if not r.active:
                        for t in p.tables:
                            tx.execute(f"DROP TABLE IF EXISTS {physical(t, r.generation)}")
                        tx.execute(
                            "DELETE FROM projection_state WHERE name = ? AND generation = ?", (name, r.generation)
                        )
                self._create_generation(tx, p, generation, active=not any(r.active for r in rows))
                tx.execute(
                    "UPDATE projection_state SET owner = ?, lease_until = ? WHERE name = ? AND generation = ?",
                    (self.worker_id, time.time() + self.lease_seconds, name, generation),
                )
            building[name] = generation
        positions = dict.fromkeys(names, 0)
        active = list(names)
        while active:
            head = self.backend.head()[0]
            start = min(positions[n] for n in active) + 1
            events = list(self.store.read_all(start, to_position=start + self._batch - 1, batch_size=self._batch))
            if not events:
                break
            self._lease_many([(n, building[n]) for n in active])
            try:
                self._apply_batch([(self.by_name[n], building[n], positions[n]) for n in active], events)
            except _Overran:
                continue  # retried with a smaller batch
            for n in list(active):
                state = next(r for r in self._rows(n) if r.generation == building[n])
                positions[n] = state.position
                if state.state == "failed":
                    active.remove(n)
            if progress:
                progress(min((positions[n] for n in active), default=head), head)
        for name, generation in building.items():
            self._swap(self.by_name[name], generation)
        self.store.purge_residue()  # rows of the dropped generations leave the WAL too (erasure)
        return positions

    def _swap(self, p: Projection, generation: int) -> None:
        """Point the public views at ``generation`` and drop the older generations, atomically."""
        with self.backend.transaction() as tx:
            self._drop_dependents(tx, p)  # recreated by _point_views below, with p's own views
            for v in p.views:
                tx.execute(f"DROP VIEW IF EXISTS {v}")
            for r in tx.execute(
                "SELECT generation FROM projection_state WHERE name = ? AND generation <> ?", (p.name, generation)
            ):
                for t in p.tables:
                    tx.execute(f"DROP VIEW IF EXISTS {t}")
                    tx.execute(f"DROP TABLE IF EXISTS {physical(t, r[0])}")
                tx.execute("DELETE FROM projection_state WHERE name = ? AND generation = ?", (p.name, r[0]))
            self._point_views(tx, p, generation)
            tx.execute(
                "UPDATE projection_state SET active = 1, needs_rebuild = 0, "
                "state = CASE WHEN state = 'failed' THEN state ELSE 'running' END "
                "WHERE name = ? AND generation = ?",
                (p.name, generation),
            )

    # -- status --------------------------------------------------------------------
    def status(self) -> list[ProjectionStatus]:
        """Per projection: checkpoint, head, lag and state.

        States: ``caught up``, ``behind``, ``failed`` (a handler raised, or an event
        could not be read), ``ahead of log`` (the checkpoint is past the head: the log
        was restored from an older backup or cut; rebuild it) and ``stale`` (its
        version changed; the next run rebuilds it). ``ProjectionStatus.ok`` tells the
        first two from the problems. A checkpoint found past the head is recorded
        (state ``ahead``), so that it is not resumed once the log grows past it again.
        """
        all_rows = {p.name: self._rows(p.name) for p in self.projections}
        head = self.backend.head()[0]  # after the checkpoints, so that a checkpoint past it is real
        out = []
        now = time.time()
        for p in self.projections:
            rows = all_rows[p.name]
            active = next((r for r in rows if r.active), None)
            if active is None:
                continue
            rebuilding = next((r.position for r in rows if not r.active), None)
            state: Status
            if active.state == "ahead" or active.position > head:
                if active.state != "ahead":  # persist it: once the log grows past the checkpoint it would not show
                    self._stop_ahead(p.name, active.generation, head)
                state = "ahead of log"
            elif active.version != p.version:
                state = "stale (version changed: will rebuild)"
            elif active.state == "failed":
                state = "failed"
            else:
                state = "caught up" if active.position >= head else "behind"
            owner = active.owner if active.lease_until is not None and active.lease_until > now else None
            out.append(
                ProjectionStatus(
                    name=p.name,
                    version=active.version,
                    generation=active.generation,
                    checkpoint=active.position,
                    head=head,
                    lag=max(0, head - active.position),
                    state=state,
                    error=active.error,
                    error_position=active.error_position,
                    owner=owner,
                    rebuilding=rebuilding,
                )
            )
        return out
