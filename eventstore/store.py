"""EventStore: the append-only, hash-chained log and its public API.

The store keeps the log: open and close, append and append_many (through the group commit
of ``eventstore.commit``), erase, reads, verification of ranges and receipts, head and
stats. Encoding, validation, encryption and upcasting are its ``EventMapper``'s
(``eventstore.mapping``), given the store's ``Catalogue``; checkpoints and proofs are the
transparency log's (``eventstore.audit``), reached through thin delegators. A receipt is
returned only after the commit that holds its entry is durable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from . import shredding, upcasting
from .backends import open_backend
from .backends.base import Backend
from .commit import GroupCommit, Request
from .errors import (
    BackendError,
    ConfigurationError,
    DatabaseDamaged,
    EventStoreError,
    InvalidEvent,
    MigrationError,
    WrongExpectedVersion,
)
from .holds import check_erase
from .mapping import (
    DEFAULT_MAX_EVENT_BYTES,
    MAX_NAME_BYTES,
    Catalogue,
    EventMapper,
    Prepared,
    check_expected,
    check_name,
    to_recorded,
)
from .migrate import Migrator
from .records import NewEvent, Receipt, RecordedEvent, Row, Stats, VerifyReport, agent_of
from .verify import _DECODE_ERRORS, _tampered, check_events, verify_range, verify_receipt

if TYPE_CHECKING:
    from .audit.log import TransparencyLog
    from .audit.merkle import StoredTree
    from .audit.notes import SignedCheckpoint, Signer
    from .audit.proofs import ConsistencyProof, InclusionProof
    from .audit.state import AuditorState
    from .health import Health

ANY: None = None
"""``expected_version=ANY``: append whatever the stream's version."""
NO_STREAM = 0
"""``expected_version=NO_STREAM``: the stream must not exist yet."""
CONFLICTS_STREAM = "conflicts"
"""Where ``append(..., record_conflicts=True)`` records refused appends (``collision.detected``)."""

Durability = Literal["full", "process"]

__all__ = [
    "ANY",
    "CONFLICTS_STREAM",
    "DEFAULT_MAX_EVENT_BYTES",
    "MAX_NAME_BYTES",
    "NO_STREAM",
    "EventStore",
    "erasure_stream",
    "open_backend",
    "to_recorded",
]


def erasure_stream(subject: str) -> str:
    """The stream of a subject's ``subject.erased`` event: ``erasure-<subject>``, or for a
    subject id too long for a stream id, ``erasure-sha256-<hex digest of the id>``."""
    stream = f"erasure-{subject}"
    if len(stream.encode()) <= MAX_NAME_BYTES:
        return stream
    return "erasure-sha256-" + hashlib.sha256(subject.encode()).hexdigest()


def _check_readable(backend: Backend, migrator: Migrator) -> None:
    """Refuse, with one line, what is not an eventstore database (empty file, other file, other schema).
    Damage (DatabaseDamaged) goes through: it is a verdict, not a usage error."""
    try:
        applied = backend.applied_migrations()
    except DatabaseDamaged:
        raise
    except BackendError:
        applied = []
    if not applied:
        raise ConfigurationError(f"{backend.url!r} is not an eventstore database (run 'eventstore init' to create one)")
    migrator.check()


class EventStore:
    """A tamper-evident event log. Safe to share between threads."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        catalogue: Catalogue | None = None,
    ):
        if catalogue is None:
            from .plugins import catalogue as installed  # the default vocabulary: the log core does not depend on it

            catalogue = installed()  # the agent catalogue, with installed plugins' types (docs/extending.md)
        self.backend = backend
        self.keys = shredding.KeyStore(backend)
        self.catalogue = catalogue
        self.mapper = EventMapper(catalogue, self.keys, max_event_bytes)
        self.commits = GroupCommit(backend)

    # -- lifecycle ----------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        migrate: bool = True,
        create: bool = True,
        readonly: bool = False,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        catalogue: Catalogue | None = None,
        **backend_options: Any,
    ) -> EventStore:
        """Open (and by default create and migrate) the store at a path or URL.

        ``durability="full"`` (default): a receipt means the event survives power
        loss. ``"process"``: it survives a crash of the process, not of the machine.
        Pending non-destructive migrations are applied unless ``migrate=False``.
        ``readonly=True`` (what auditors use): the database must exist and is neither
        created, migrated nor written (appends and checkpoints then fail).
        """
        if durability not in ("full", "process"):
            raise ConfigurationError(f"durability must be 'full' or 'process', not {durability!r}")
        backend = open_backend(
            os.fspath(url), durability=durability, create=create and not readonly, readonly=readonly, **backend_options
        )
        try:
            migrator = Migrator(backend)
            if readonly:
                _check_readable(backend, migrator)
            elif migrate:
                pending = migrator.plan()
                destructive = [m for m in pending if m.destructive]
                if destructive:
                    m = destructive[0]
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name} is destructive and is not applied automatically; "
                        "run 'eventstore migrate up --allow-destructive'"
                    )
                migrator.up()
            else:
                migrator.check()
        except BaseException:
            backend.close()
            raise
        return cls(backend, max_event_bytes=max_event_bytes, catalogue=catalogue)

    def close(self) -> None:
        if self.residue_pending:  # an erasure's purge could not finish: try once more
            try:
                self.backend.purge_residue(0.5)
            except Exception:  # closing must not fail on a clean-up
                pass
        self.backend.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.backend.url

    def migrator(self) -> Migrator:
        return Migrator(self.backend)

    # -- appending ----------------------------------------------------------------
    def erase(
        self, subject: str, *, requested_by: str, reason: str | None = None, override_hold: str | None = None
    ) -> Receipt:
        """Erase a data subject: append a ``subject.erased`` event and destroy its key, atomically.

        Both commit in one transaction, or neither does: a failure (bad argument,
        full disk, lost connection) leaves the key and no record. Everything is
        validated before the transaction. Every hash, receipt and proof still
        verifies; the subject's personal fields read as erased from now on, in reads
        and in rebuilt read models. Afterwards the store purges the copies of the key
        its files may keep (``purge_residue``; docs/events.md, "What erasure removes").

        A subject under legal hold (``eventstore.holds``) is refused (``LegalHoldActive``, naming
        the hold and its reason) unless ``override_hold`` gives a reason: then a ``hold.overridden``
        event commits in the same transaction as the erasure.
        """
        check_name(subject, "subject")
        check_name(requested_by, "requested_by")
        data: dict[str, Any] = {"subject_id": subject, "requested_by": requested_by}
        if reason is not None:
            data["reason"] = reason
        req = Request(erasure_stream(subject), None, self.prepare([NewEvent(type="subject.erased", data=data)]))
        req.effects = [shredding.KeyStore.erase_statement(subject, requested_by)]
        held = check_erase(self, subject, override_hold, requested_by)  # refuses, or the override's record
        receipt = self.commits.submit([req, *held], atomic=True)[0][0]
        self.purge_residue()
        return receipt

    def purge_residue(self, timeout: float = 2.0) -> bool:
        """Remove stale copies of destroyed keys and dropped read-model rows from the store's files.

        SQLite: checkpoints the WAL into the database and truncates it (freed
        content is already zeroed: connections run with ``secure_delete``); this
        waits up to ``timeout`` seconds for readers of older snapshots, then gives
        up and is tried again on ``close``. PostgreSQL: vacuums ``subject_keys``
        (when this role may); WAL, archives and backups keep copies until they are
        recycled (docs/events.md). Returns True when nothing is left in files the
        store controls. Projection rebuilds call it after swapping generations.
        """
        try:
            done = self.backend.purge_residue(timeout)
        except Exception:  # the erasure itself is committed: a failed clean-up must not undo that answer
            done = False
        self._residue_pending = not done
        return done

    @property
    def residue_pending(self) -> bool:
        """True when the last ``purge_residue`` could not finish (see its docstring)."""
        return getattr(self, "_residue_pending", False)

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = ANY,
        record_conflicts: bool = False,
    ) -> list[Receipt]:
        """Append events to one stream atomically and return their receipts once durable.

        ``expected_version``: ``None`` (ANY) for any version, ``0`` (NO_STREAM) for a
        stream with no events yet, or the stream's current version. On a mismatch
        ``WrongExpectedVersion`` is raised and nothing is written, except that with
        ``record_conflicts=True`` a ``collision.detected`` event (kind ``expected_version``)
        is first appended to the ``conflicts`` stream, so parallel agents' races become
        evidence (docs/events.md, "Executions, collisions and agents").
        """
        check_name(stream_id, "stream id")
        check_expected(expected_version)
        commits = self.commits
        commits.enter()
        try:
            req = Request(stream_id, expected_version, self.mapper.prepare(events))
            return commits.submit([req])[0]
        except WrongExpectedVersion as e:
            if not record_conflicts:
                raise
            refused = e
        finally:
            commits.leave()
        self.record_conflict(refused, events)  # only reached for a refusal to record
        raise refused

    def record_conflict(self, refused: WrongExpectedVersion, events: Sequence[NewEvent]) -> None:
        """Append the ``collision.detected`` of a refused append (its ``events``) to
        ``CONFLICTS_STREAM``, durable before the caller reports the refusal. If that fails, the
        refusal carries a note saying so (what ``append(record_conflicts=True)`` and ``serve
        --record-conflicts`` do)."""
        agents: list[str] = []
        session_id = None
        for ev in events:
            agent = agent_of(ev.metadata)
            if agent is not None and agent not in agents:
                agents.append(agent)
            sid = ev.data.get("session_id") if isinstance(ev.data, dict) else None
            if session_id is None and isinstance(sid, str) and sid:
                session_id = sid
        data: dict[str, Any] = {
            "resource": refused.stream_id,
            "kind": "expected_version",
            "agents": agents,
            "resolution": "refused",
            "stream_id": refused.stream_id,
            "expected_version": refused.expected,
            "actual_version": refused.actual,
        }
        if session_id is not None:
            data["session_id"] = session_id
        metadata = {"agent_id": agents[0]} if agents else {}
        try:
            self.append(CONFLICTS_STREAM, [NewEvent(type="collision.detected", data=data, metadata=metadata)])
        except EventStoreError as e:
            refused.add_note(f"the conflict could not be recorded in {CONFLICTS_STREAM!r}: {e}")

    def append_many(self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> list[list[Receipt]]:
        """Append to several streams in one transaction: all or none.

        Each item is ``(stream_id, events, expected_version)``. If any expected
        version is wrong, ``WrongExpectedVersion`` is raised and nothing is written.
        """
        reqs = []
        for i, item in enumerate(batch):
            try:
                stream_id, events, expected = item
            except (TypeError, ValueError):
                raise InvalidEvent(f"batch item {i} must be a (stream_id, events, expected_version) tuple") from None
            check_name(stream_id, f"batch item {i}: stream id")
            check_expected(expected)
            reqs.append(Request(stream_id, expected, self.mapper.prepare(events)))
        seen: dict[tuple[str, str], int] = {}  # an id twice in one stream would fail at the unique index
        for i, req in enumerate(reqs):
            for ev in req.events:
                if ev.id is not None:
                    j = seen.setdefault((req.stream_id, ev.id), i)
                    if j != i:
                        raise InvalidEvent(
                            f"batch item {i}: event id {ev.id!r} of stream {req.stream_id!r} is also in batch item {j}"
                        )
        if not reqs:
            return []
        return self.commits.submit(reqs, atomic=True)

    def prepare(self, events: Sequence[NewEvent]) -> list[Prepared]:
        """Validate and encode events as an append would, writing nothing (``EventMapper.prepare``)."""
        return self.mapper.prepare(events)

    @property
    def max_event_bytes(self) -> int:
        return self.mapper.max_event_bytes

    # -- reading ------------------------------------------------------------------
    def stream_version(self, stream_id: str) -> int:
        """The stream's current version: 0 for a stream with no events."""
        return self.backend.stream_version(stream_id)

    def head(self) -> tuple[int, str | None]:
        """(position, hex hash) of the newest entry; (0, None) for an empty log."""
        position, h = self.backend.head()
        return position, (h.hex() if h else None)

    def read_stream(self, stream_id: str, from_version: int = 1, *, batch_size: int = 1000) -> Iterator[RecordedEvent]:
        """Events of one stream in version order."""
        version = max(1, from_version)
        decode = self.mapper.decode
        while True:
            rows = self.backend.read_stream(stream_id, version, batch_size)
            try:
                yield from map(decode, rows)
            except _DECODE_ERRORS as e:
                raise _tampered(rows, e) from None
            if len(rows) < batch_size:
                return
            version = rows[-1].version + 1

    def read_all(
        self, from_position: int = 1, *, to_position: int | None = None, batch_size: int = 1000
    ) -> Iterator[RecordedEvent]:
        """Every event in global order, fetched in pages of ``batch_size``."""
        decode = self.mapper.decode
        for rows in self.iter_rows(from_position, to_position, batch_size):
            try:
                yield from map(decode, rows)
            except _DECODE_ERRORS as e:
                raise _tampered(rows, e) from None

    def iter_rows(
        self, from_position: int = 1, to_position: int | None = None, batch_size: int = 1000
    ) -> Iterator[list[Row]]:
        """Raw stored rows in pages (for verification and tools that need the bytes)."""
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        position = max(1, from_position)
        while to_position is None or position <= to_position:
            rows = self.backend.read_range(position, to_position, batch_size)
            if not rows:
                return
            yield rows
            if len(rows) < batch_size:
                return
            position = rows[-1].position + 1

    # -- verification (eventstore.verify) ---------------------------------------------
    def verify(
        self,
        from_position: int = 1,
        to_position: int | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 500,
        on_rows: Callable[[list[Row]], None] | None = None,
    ) -> VerifyReport:
        """Rehash every payload and entry in the range and check every link (``verify.verify_range``).

        ``progress(done, total)`` is called after each batch, ``on_rows(rows)`` with each
        verified batch. The report names the first bad position and why.
        """
        return verify_range(self, from_position, to_position, progress=progress, batch_size=batch_size, on_rows=on_rows)

    def verify_receipt(self, receipt: Receipt) -> VerifyReport:
        """Check a receipt against the stored row at its position (``verify.verify_receipt``)."""
        return verify_receipt(self, receipt)

    def check_events(
        self, *, progress: Callable[[int, int], None] | None = None, max_problems: int = 100
    ) -> upcasting.EventsCheckReport:
        """Report every stored event a reader cannot fully decode (``verify.check_events``)."""
        return check_events(self, progress=progress, max_problems=max_problems)

    def health(self, *, max_lag: int | None = None, require_writable: bool | None = None) -> Health:
        """Reachable, schema current, appends accepted (unless opened read-only or
        ``require_writable=False``), head, read-model lag (``eventstore.health.check``): a few
        indexed reads, for health probes."""
        from .health import check

        return check(self, max_lag=max_lag, require_writable=require_writable)

    def stats(self) -> Stats:
        events, streams, types = self.backend.counts()
        head, head_hash = self.backend.head()
        applied = self.backend.applied_migrations()
        return Stats(
            url=self.url,
            events=events,
            streams=streams,
            types=types,
            head_position=head,
            head_hash=head_hash.hex() if head_hash else None,
            size_bytes=self.backend.size_bytes(),
            schema_version=max((a.version for a in applied), default=0),
        )

    # -- checkpoints and proofs: delegators to eventstore.audit ---------------------
    # The transparency log sits above the log (eventstore.audit imports this module, never the
    # reverse at import time); these documented methods import it when called.
    @property
    def transparency(self) -> TransparencyLog:
        """Checkpoints and proofs over this log, derived from its entries (eventstore.audit.log)."""
        from .audit.log import TransparencyLog

        return TransparencyLog(self)

    @property
    def tree(self) -> StoredTree:
        """The stored Merkle tree: a cache for O(log n) proofs, never trusted unchecked."""
        from .audit.merkle import StoredTree

        return StoredTree(self.backend)

    def tree_root(self, size: int | None = None) -> bytes:
        """RFC 9162 root of the first ``size`` entries (default: all), derived from the entries."""
        return self.transparency.root(size)

    def checkpoints(self, origin: str | None = None) -> list[tuple[str, int, bytes, str]]:
        """Stored checkpoints as (origin, tree_size, root, note), oldest first."""
        return self.transparency.checkpoints(origin)

    def checkpoint(self, signer: Signer) -> SignedCheckpoint:
        """Sign a C2SP checkpoint of the whole log (root derived from the entries) and store it.

        Refuses when the log no longer matches a checkpoint signed earlier under the
        same origin: a log must never sign two inconsistent views.
        """
        return self.transparency.checkpoint(signer)

    def prove_inclusion(
        self, position: int, tree_size: int | None = None, *, origin: str = "", root: bytes | None = None
    ) -> InclusionProof:
        """An inclusion proof of the entry at ``position`` in the tree of ``tree_size`` entries,
        verified before it is returned (against ``root`` if given)."""
        return self.transparency.prove_inclusion(position, tree_size, origin=origin, root=root)

    def prove_consistency(
        self,
        old_size: int,
        new_size: int | None = None,
        *,
        origin: str = "",
        old_root: bytes | None = None,
        new_root: bytes | None = None,
    ) -> ConsistencyProof:
        """A proof that the tree of ``old_size`` entries is a prefix of the one of ``new_size``,
        verified before it is returned."""
        return self.transparency.prove_consistency(
            old_size, new_size, origin=origin, old_root=old_root, new_root=new_root
        )

    def tlog_proof(self, position: int, checkpoint: SignedCheckpoint) -> str:
        """An offline receipt (c2sp.org/tlog-proof@v1) for one entry under a signed checkpoint."""
        return self.transparency.tlog_proof(position, checkpoint)

    def verify_checkpoint(
        self,
        checkpoint: SignedCheckpoint,
        *,
        state: AuditorState | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Everything ``verify`` checks, plus the checkpoint's root recomputed from the entries
        and, given an auditor's state, no rollback or fork (see TransparencyLog.verify_checkpoint)."""
        return self.transparency.verify_checkpoint(checkpoint, state=state, progress=progress)
