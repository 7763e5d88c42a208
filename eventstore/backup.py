"""Backups, restores and maintenance of a store (docs/operations.md, "Backups, restores and maintenance").

``backup`` takes an online, consistent copy of a SQLite store while agents append (SQLite's
backup API, under one read snapshot) and verifies the copy before it is renamed into place.
``restore`` replaces a SQLite store with a verified backup, refusing a backup that would
silently roll back history a signed checkpoint or an auditor already saw (unless forced), and
records every restore as a ``store.restored`` event in the restored log. ``maintain`` runs the
housekeeping each backend needs. PostgreSQL backups are pg_dump's or a base backup's (the docs
give the steps); ``backup`` and ``restore`` refuse a PostgreSQL URL.
"""

from __future__ import annotations

import base64
import getpass
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from .audit import merkle, notes
from .backends.sqlite import path_from_url
from .errors import BackendError, DerivedDataDamaged, EventStoreError, UserError, VerificationError
from .files import fsync_dir, fsync_path, temp_beside
from .mapping import check_name
from .records import NewEvent, Row, VerifyReport
from .store import EventStore

if TYPE_CHECKING:
    from .audit.state import AuditorState

__all__ = [
    "MAINTENANCE_STREAM",
    "BackupReport",
    "CheckpointRef",
    "MaintainReport",
    "RestoreRefused",
    "RestoreReport",
    "VerifyMode",
    "backup",
    "maintain",
    "restore",
]

MAINTENANCE_STREAM = "maintenance"
"""The stream of ``store.restored`` events."""
DOCS = "docs/operations.md, 'Backups, restores and maintenance'"
PAGES_PER_STEP = 4096
"""Pages copied per backup step (16 MiB at SQLite's default page size): progress granularity."""

Progress = Callable[[int, int], None]
VerifyMode = Literal["full", "checkpoint"]


class RestoreRefused(UserError):
    """The backup is behind history the store or an auditor already saw (a silent rollback)."""


class CheckpointRef(msgspec.Struct, frozen=True, kw_only=True):
    """A stored signed checkpoint, named: its log's origin, its size and root (hex)."""

    origin: str
    tree_size: int
    root: str


class BackupReport(msgspec.Struct, kw_only=True):
    path: str
    size_bytes: int
    head_position: int
    head_hash: str | None
    entries_verified: int
    verified_from: int
    """The first position rehashed: 1 (a full check) or the newest checkpoint's size + 1."""
    checkpoint: CheckpointRef | None
    """The newest checkpoint stored in the copy (its root checked against the copy's entries)."""
    seconds: float


class RestoreReport(msgspec.Struct, kw_only=True):
    db: str
    backup: str
    backup_head_position: int
    backup_head_hash: str | None
    entries_verified: int
    forced: bool
    behind: CheckpointRef | None
    """The newest checkpoint (stored or in the auditor state) the backup was behind; None if none."""
    replaced_head_position: int | None
    """The head of the store that was replaced; None if there was none or it could not be read."""
    event_position: int
    """Position of the ``store.restored`` event appended to the restored log."""
    head_position: int
    head_hash: str | None
    seconds: float


class MaintainReport(msgspec.Struct, kw_only=True):
    backend: str
    done: list[str]
    skipped: list[str]
    size_before: int | None
    size_after: int | None
    seconds: float


# -- helpers ------------------------------------------------------------------------
def _refuse_postgres(url: str, what: str) -> None:
    if url.startswith(("postgres://", "postgresql://")):
        raise UserError(f"'{what}' works on SQLite stores; back up PostgreSQL with pg_dump or a base backup ({DOCS})")


def _ro_uri(path: str) -> str:
    return "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(path))) + "?mode=ro"


def _remove(path: str) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def _temp_beside(path: str) -> str:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"cannot write {path!r}: directory {parent!r} does not exist")
    return temp_beside(path)


def _copy(source: str, target: str, progress: Progress | None) -> None:
    """Copy the SQLite database ``source`` into the file ``target`` (a single file, rollback journal)
    under one read snapshot of the source: appends by other connections go on meanwhile and are
    not in the copy, and never restart it."""
    try:
        src = sqlite3.connect(_ro_uri(source), uri=True, isolation_level=None, timeout=30)
    except sqlite3.Error as e:
        raise UserError(f"cannot open {source!r}: {e}") from None
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the snapshot

            def step(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            src.backup(dst, pages=PAGES_PER_STEP, progress=step)
            src.execute("COMMIT")
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
    except sqlite3.DatabaseError as e:
        raise UserError(f"cannot copy {source!r}: {e}") from None
    finally:
        src.close()
    fsync_path(target)


class _Checked(msgspec.Struct, kw_only=True):
    head_position: int
    head_hash: str | None
    verified: int
    verified_from: int
    roots: dict[int, bytes]
    checkpoints: list[tuple[str, int, bytes, str]]


def _open_copy(path: str, what: str) -> EventStore:
    try:
        return EventStore.open(path, readonly=True)
    except EventStoreError as e:
        detail = str(e).replace(repr(path), "it").replace(repr(os.path.abspath(path)), "it")
        raise VerificationError(f"{what} cannot be opened as an eventstore database: {detail}") from None


def _refused(what: str, report: VerifyReport) -> VerificationError:
    p = report.problem
    assert p is not None
    return VerificationError(
        f"{what} does not verify at position {p.position} ({p.kind}): {p.message}; nothing was replaced"
    )


def _check_since_checkpoint(path: str, what: str) -> _Checked | None:
    """Verify the copy from its newest stored checkpoint on (``TransparencyLog.verify_since``);
    None if it has no checkpoint (then only a full check will do)."""
    copy = _open_copy(path, what)
    try:
        stored = copy.checkpoints()
        if not stored:
            return None
        origin, size, root, note = max(stored, key=lambda c: c[1])
        try:
            body = notes.Checkpoint.parse(notes.Note.parse(note).text)
        except EventStoreError as e:
            raise VerificationError(
                f"{what}: its checkpoint of size {size} for {origin!r} is not a checkpoint note: {e}"
            ) from None
        if (body.origin, body.size, body.root) != (origin, size, root):
            raise VerificationError(f"{what}: its checkpoint of size {size} for {origin!r} does not match its own note")
        try:
            report = copy.transparency.verify_since(size, root)
        except (VerificationError, DerivedDataDamaged) as e:
            raise VerificationError(
                f"{what} does not match its own checkpoint of size {size} for {origin!r}: {e}"
            ) from None
        if not report.ok:
            raise _refused(what, report)
        return _Checked(
            head_position=report.head_position,
            head_hash=report.head_hash,
            verified=report.checked,
            verified_from=size + 1,
            roots={size: root},
            checkpoints=stored,
        )
    finally:
        copy.close()


def _check_copy(path: str, wanted: set[int], what: str) -> _Checked:
    """Open the copy read-only, verify its whole chain and compute its tree roots at ``wanted``
    sizes and at its own stored checkpoints' sizes (each must have that checkpoint's root)."""
    copy = _open_copy(path, what)
    try:
        stored = copy.checkpoints()
        sizes = wanted | {n for _, n, _, _ in stored}
        compact = merkle.CompactRange()
        roots: dict[int, bytes] = {0: compact.root()} if 0 in sizes else {}

        last = max(sizes, default=0)

        def add(rows: list[Row]) -> None:
            append, leaf_hash = compact.append, merkle.leaf_hash
            for r in rows:
                if compact.size >= last:
                    return  # no root wanted beyond this: the tree costs a hash per entry
                append(leaf_hash(r.hash))
                if compact.size in sizes:
                    roots[compact.size] = compact.root()

        report = copy.verify(on_rows=add if last else None)
        if not report.ok:
            raise _refused(what, report)
        for origin, n, root, _ in stored:
            if roots.get(n) != root:
                raise VerificationError(
                    f"{what}: its entries do not have the root of its own checkpoint of size {n} for {origin!r}"
                )
        return _Checked(
            head_position=report.head_position,
            head_hash=report.head_hash,
            verified=report.checked,
            verified_from=1,
            roots=roots,
            checkpoints=stored,
        )
    finally:
        copy.close()


def _ref(origin: str, size: int, root: bytes) -> CheckpointRef:
    return CheckpointRef(origin=origin, tree_size=size, root=root.hex())


# -- backup ---------------------------------------------------------------------------
def backup(
    store: EventStore,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    verify: VerifyMode = "full",
    progress: Progress | None = None,
) -> BackupReport:
    """Copy a SQLite store to ``path`` while others append, and verify the copy before it is renamed
    into place. The copy is the log as of one committed transaction (a prefix of the log).

    ``verify="full"``: every entry of the copy is rehashed and linked and each stored
    checkpoint's root recomputed from its entries (O(n)). ``verify="checkpoint"``: the copy is
    checked from its newest stored checkpoint on, as signing the next checkpoint would
    (``TransparencyLog.verify_since``: O(entries since + log n)); the entries below were
    verified when that checkpoint was signed, and ``restore`` verifies a backup fully anyway.
    A copy with no checkpoint is verified in full. Refuses an existing ``path`` unless
    ``force``; on any failure ``path`` is left as it was and no temporary file remains.
    ``progress(pages_done, pages_total)`` is called during the copy."""
    started = time.perf_counter()
    if verify not in ("full", "checkpoint"):
        raise UserError(f"verify must be 'full' or 'checkpoint', not {verify!r}")
    if store.backend.dialect != "sqlite":
        _refuse_postgres("postgresql://", "eventstore backup")
    source = path_from_url(store.url)
    target = os.fspath(path)
    if os.path.isdir(target):
        raise UserError(f"{target!r} is a directory: give the backup's file name")
    if os.path.lexists(target):
        if not force:
            raise UserError(f"{target!r} exists: give another file name, or --force to replace it")
        if os.path.exists(target) and os.path.samefile(target, source):
            raise UserError(f"{target!r} is the store itself")
    tmp = _temp_beside(target)
    try:
        _copy(source, tmp, progress)
        checked = (_check_since_checkpoint(tmp, "the copy") if verify == "checkpoint" else None) or _check_copy(
            tmp, set(), "the copy"
        )
        size = os.path.getsize(tmp)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    fsync_dir(target)
    newest = max(checked.checkpoints, key=lambda c: c[1], default=None)
    return BackupReport(
        path=target,
        size_bytes=size,
        head_position=checked.head_position,
        head_hash=checked.head_hash,
        entries_verified=checked.verified,
        verified_from=checked.verified_from,
        checkpoint=None if newest is None else _ref(newest[0], newest[1], newest[2]),
        seconds=round(time.perf_counter() - started, 3),
    )


# -- restore --------------------------------------------------------------------------
def _current(url: str) -> tuple[int | None, list[tuple[str, int, bytes, str]]]:
    """The head and stored checkpoints of the store to be replaced ((None, []) if there is none)."""
    if not os.path.exists(path_from_url(url)):
        return None, []
    with EventStore.open(url, readonly=True) as current:
        return current.head()[0], current.checkpoints()


def restore(
    url: str,
    backup_path: str | os.PathLike[str],
    *,
    force: bool = False,
    reason: str | None = None,
    by: str | None = None,
    state: AuditorState | None = None,
) -> RestoreReport:
    """Replace the SQLite store at ``url`` with the backup at ``backup_path``.

    The backup is copied beside the store and verified first (a backup that does not verify is
    always refused). It is refused (``RestoreRefused``) when its head is behind a checkpoint the
    current store has stored, or behind ``state`` (an auditor's), or its tree at that size has
    another root: restoring it would silently roll back history someone saw. ``force`` (with a
    ``reason``) overrides. Every restore appends a ``store.restored`` event (stream
    ``maintenance``) to the restored log, naming the backup, its head, the checkpoint it was
    behind, the reason and ``by`` (default: the OS user); the store is replaced in one SQLite
    transaction (the backup API), so other connections see the old log or the new one.
    """
    started = time.perf_counter()
    _refuse_postgres(url, "eventstore restore")
    target = path_from_url(url)
    source = os.fspath(backup_path)
    if not os.path.isfile(source):
        raise UserError(f"no backup file at {source!r}")
    if os.path.exists(target) and os.path.samefile(source, target):
        raise UserError(f"{source!r} is the store itself")
    if force and not reason:
        raise UserError("--force needs --reason TEXT: a forced restore is recorded with its reason")
    who = check_name(by or _os_user(), "--by")
    if reason is not None:
        try:
            reason.encode()
        except UnicodeEncodeError:
            raise UserError("--reason is not valid UTF-8 text") from None
    try:
        replaced_head, known = _current(url)
    except EventStoreError as e:
        if not force:
            raise RestoreRefused(
                f"cannot read the checkpoints of the store being replaced ({e}), so a rollback cannot be "
                "ruled out: --force --reason TEXT restores anyway (recorded)"
            ) from None
        replaced_head, known = None, []
    wanted = {n for _, n, _, _ in known}
    if state is not None:
        wanted.add(state.tree_size)
    tmp = _temp_beside(target)
    try:
        _copy(source, tmp, None)
        checked = _check_copy(tmp, wanted, f"the backup {source!r}")
        found = _behind(checked, known, state)
        behind, behind_note, who_knows = found if found is not None else (None, None, None)
        if behind is not None and not force:
            if behind.tree_size > checked.head_position:
                what = f"the backup's head is position {checked.head_position}, behind"
            else:
                what = f"the backup's first {behind.tree_size} entries do not have the root of"
            raise RestoreRefused(
                f"{what} the checkpoint of size {behind.tree_size} for {behind.origin!r} that {who_knows} knows: "
                "restoring it would silently roll back history; --force --reason TEXT overrides "
                "(recorded in the restored log)"
            )
        data: dict[str, Any] = {
            "backup": os.path.abspath(source),
            "backup_head_position": checked.head_position,
            "backup_head_hash": checked.head_hash,
            "forced": force,
            "by": who,
        }
        if reason:
            data["reason"] = reason
        if behind is not None:
            data["behind"] = {**msgspec.structs.asdict(behind), "known_by": who_knows}
            data["behind_note"] = behind_note  # the signed checkpoint the restored log no longer has
        if replaced_head is not None:
            data["replaced_head_position"] = replaced_head
        with EventStore.open(tmp) as restored:
            receipt = restored.append(MAINTENANCE_STREAM, [NewEvent(type="store.restored", data=data)])[0]
        _install(tmp, target)
    finally:
        _remove(tmp)
    return RestoreReport(
        db=target,
        backup=source,
        backup_head_position=checked.head_position,
        backup_head_hash=checked.head_hash,
        entries_verified=checked.verified,
        forced=force,
        behind=behind,
        replaced_head_position=replaced_head,
        event_position=receipt.position,
        head_position=receipt.position,
        head_hash=receipt.hash,
        seconds=round(time.perf_counter() - started, 3),
    )


def _behind(
    checked: _Checked, known: list[tuple[str, int, bytes, str]], state: AuditorState | None
) -> tuple[CheckpointRef, str, str] | None:
    """The largest checkpoint (stored, or the auditor's) the backup does not contain, with its
    signed note and who knows it (``the store`` or ``the auditor state``)."""
    seen = [(n, o, r, note, "the store") for o, n, r, note in known]
    if state is not None:
        seen.append(
            (state.tree_size, state.origin, base64.b64decode(state.root), state.checkpoint, "the auditor state")
        )
    missing = [m for m in seen if m[0] > checked.head_position or checked.roots.get(m[0]) != m[2]]
    if not missing:
        return None
    n, o, r, note, who = max(missing, key=lambda m: (m[0], m[4] == "the auditor state"))
    return _ref(o, n, r), note, who


def _install(tmp: str, target: str) -> None:
    """Write the verified copy over the store in one transaction of SQLite's backup API: other
    connections wait for the lock and then read the new log (no stale -wal is left to replay)."""
    try:
        src = sqlite3.connect(_ro_uri(tmp), uri=True, isolation_level=None)
        try:
            dst = sqlite3.connect(target, isolation_level=None, timeout=30)
            try:
                dst.execute("PRAGMA busy_timeout=30000")
                dst.execute("PRAGMA synchronous=FULL")
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=WAL")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.DatabaseError as e:
        raise UserError(
            f"cannot write the backup over {target!r}: {e} (if the file is not a database, move it away first)"
        ) from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return f"uid {os.getuid()}"


# -- maintenance ----------------------------------------------------------------------
def maintain(store: EventStore) -> MaintainReport:
    """Housekeeping. SQLite: ``ANALYZE``, ``wal_checkpoint(TRUNCATE)``, and ``incremental_vacuum``
    only when the database uses incremental auto-vacuum. PostgreSQL: ``VACUUM ANALYZE`` of the
    read-model tables and ``ANALYZE events``, each only where the role may (the rest is reported
    as skipped). Nothing here changes what the log holds."""
    started = time.perf_counter()
    before = store.backend.size_bytes()
    if store.backend.dialect == "sqlite":
        done, skipped = _maintain_sqlite(path_from_url(store.url))
    else:
        done, skipped = _maintain_postgres(store.backend.url)
    return MaintainReport(
        backend=store.backend.dialect,
        done=done,
        skipped=skipped,
        size_before=before,
        size_after=store.backend.size_bytes(),
        seconds=round(time.perf_counter() - started, 3),
    )


def _maintain_sqlite(path: str) -> tuple[list[str], list[str]]:
    done: list[str] = []
    skipped: list[str] = []
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    except sqlite3.Error as e:
        raise BackendError(f"cannot open {path!r}: {e}") from None
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("ANALYZE")
        done.append("ANALYZE")
        busy, wal_pages, moved = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            skipped.append(
                f"wal_checkpoint(TRUNCATE): a reader holds an older snapshot ({moved} of {wal_pages} WAL pages "
                "copied); run again later"
            )
        else:
            done.append(f"wal_checkpoint(TRUNCATE): {moved} WAL pages copied, WAL truncated")
        mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
        if mode == 2:
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            conn.execute("PRAGMA incremental_vacuum").fetchall()
            done.append(f"incremental_vacuum: {free} free pages released")
        else:
            name = {0: "none", 1: "full"}.get(mode, str(mode))
            skipped.append(f"incremental_vacuum: auto_vacuum is {name}, not incremental")
    except sqlite3.Error as e:
        raise BackendError(f"maintenance of {path!r} failed: {e}") from None
    finally:
        conn.close()
    return done, skipped


def _maintain_postgres(url: str) -> tuple[list[str], list[str]]:
    import psycopg

    done: list[str] = []
    skipped: list[str] = []
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as e:
        raise BackendError(f"cannot connect to PostgreSQL for maintenance: {str(e).splitlines()[0]}") from None
    with conn:
        rows = conn.execute(
            "SELECT c.relname, pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c "
            "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
            "AND (c.relname = 'events' OR c.relname = 'projection_state' OR c.relname LIKE '%%\\_\\_g%%') "
            "ORDER BY c.relname"
        ).fetchall()
        for name, may in rows:
            sql = "ANALYZE events" if name == "events" else f'VACUUM ANALYZE "{name}"'
            if not may:
                skipped.append(f"{sql}: this role does not own the table")
                continue
            try:
                conn.execute(sql)  # the names come from pg_class
                done.append(sql)
            except psycopg.Error as e:
                skipped.append(f"{sql}: {str(e).splitlines()[0]}")
    return done, skipped
