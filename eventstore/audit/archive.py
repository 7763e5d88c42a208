"""Archives: a self-contained, compressed, offline-verifiable copy of a segment of the log.

An archive (docs/archive.md) is one gzip member holding JSON Lines: a header (the segment,
the positions whose payload was already pruned, the signed checkpoint it is anchored to, and
the Merkle hashes that tie the segment to that checkpoint's root), then one line per entry
with its payloads exactly as stored. A verifier needs the archive and the log's public key,
nothing else:

* every entry is rehashed and chained as ``verify`` does (``ChainVerifier``), so an edited
  payload, hash or order is refused at the first bad position;
* the leaves of the segment, with the ``left`` hashes (the roots of the perfect subtrees
  before the segment), give the root of the tree of ``through`` entries, and the
  ``right`` hashes are the RFC 9162 consistency proof from that tree to the checkpoint's:
  one pass, linear in the segment, O(log n) extra hashes;
* the checkpoint's signature is checked with the given key;
* an entry without its payload must be one the header lists as pruned before archiving, so
  a payload stripped from the file later is refused (v1 archives, with no such list, only
  report them).

Writing is atomic (temporary file, fsync, link or rename, fsync of the directory): a crash
leaves no partial archive under the final name. Each archive written is recorded in the log
as an ``archive.created`` event (stream ``archives``); ``archived_through`` reads them back.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import msgspec

from ..catalogue import AGENTS, ArchiveCreated
from ..errors import UserError, VerificationError
from ..files import fsync_dir
from ..hashing import GENESIS_HASH, HASH_SCHEME
from ..mapping import check_name, to_recorded
from ..records import NewEvent, Problem, ProblemKind, RecordedEvent, Row
from ..retention import PruneReport
from ..verify import ChainVerifier
from . import merkle, notes

if TYPE_CHECKING:
    from ..store import EventStore

FORMAT = "eventstore-archive/v2"
"""The ``format`` written. v2 added the header's ``pruned``."""
FORMAT_V1 = "eventstore-archive/v1"
"""Still read: its absent payloads are reported, as it does not say which were pruned before archiving."""
ARCHIVES_STREAM = "archives"
"""The stream of ``archive.created`` events."""
ARCHIVE_CREATED = "archive.created"
COMPRESSION_LEVEL = 1
"""zlib level: 1 archives about twice as fast as 6 for about 15% more bytes (docs/performance.md)."""
_BATCH = 1000
_CHUNK = 1 << 16
"""Compressed bytes decompressed at a time."""
MAX_LINE_BYTES = 1 << 28
"""The longest line a reader accepts, decompressed (256 MiB: an event's payload is at most
``max_event_bytes``, 1 MiB by default, and a line at most a few times that). A crafted gzip
member can expand about 1,000 times; without this cap one endless line would take the memory
of the auditor's machine (docs/archive.md, "Container")."""
_SHOWN = 10
"""Positions of absent payloads named in a report."""
_END = (1 << 63, 1 << 63)
"""A range past every position (``_Ranges`` when none is left)."""

Progress = Callable[[int, int], None]


class ArchiveHeader(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The first line of an archive (docs/archive.md, "Header")."""

    format: str
    hash_scheme: str
    from_position: int
    through: int
    pruned: list[tuple[int, int]] | None = None
    """v2: ranges [first, last] of the positions whose payload was already pruned when archived
    (ascending, disjoint, not adjacent); None in v1."""
    prev_hash: str
    """Hex hash of the entry before ``from_position`` (64 zeros when it is 1)."""
    checkpoint: str
    """The signed checkpoint (a C2SP signed note) the segment is anchored to."""
    left: list[str]
    """Hex roots of the perfect subtrees ``decompose(from_position - 1)``, left to right."""
    right: list[str]
    """Hex RFC 9162 consistency proof PROOF(through, D[0:checkpoint size])."""


class ArchiveEntry(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One entry line: the ``events`` row, payloads as their stored text (docs/archive.md, "Entries")."""

    position: int
    stream_id: str
    version: int
    type: str
    recorded_at: str
    data: str | None
    metadata: str
    hash: str
    event_id: str | None = None
    data_digest: str | None = None
    """Only when ``data`` is null (the payload bytes were removed): the digest the hash covers."""


class ArchiveInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What ``write_archive`` wrote (also the ``archive.created`` event, and ``--json``)."""

    file: str
    sha256: str
    bytes: int
    from_position: int
    through: int
    entries: int
    origin: str
    tree_size: int
    root: str
    payloads_absent: int = 0
    """Entries whose payload was already pruned (the header lists them)."""
    event_position: int | None = None


class ArchiveReport(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of ``verify_archive``: ``ok`` only if every entry, the proof and the signature check."""

    ok: bool
    checked: int
    from_position: int
    through: int
    origin: str | None
    tree_size: int | None
    root: str | None
    problem: Problem | None = None
    format: str | None = None
    payloads_absent: int = 0
    """Entries checked whose payload the archive does not hold (only its digest): after
    ``prune --archived`` a payload lost from the archive is lost. In a v2 archive each is one
    the header lists as pruned before archiving."""
    payloads_absent_at: list[int] = []
    """The first positions of those (at most ten)."""


# -- writing ------------------------------------------------------------------------------


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return "unknown"


def _entries(rows: list[Row]) -> list[ArchiveEntry]:
    """The archive lines of stored rows; refuses payload bytes that are not UTF-8 (not storable as text)."""
    out = []
    entry = ArchiveEntry
    try:
        for row in rows:
            position, stream_id, version, type_, data, metadata, data_digest, _, recorded_at, _, h, event_id = row
            out.append(
                entry(
                    position,
                    stream_id,
                    version,
                    type_,
                    recorded_at,
                    None if data is None else data.decode(),
                    metadata.decode(),  # type: ignore[union-attr]
                    h.hex(),
                    event_id,
                    data_digest.hex() if data is None else None,
                )
            )
    except (UnicodeDecodeError, AttributeError):
        raise VerificationError(
            f"position {row.position}: a payload is not UTF-8 text or is missing; it cannot be archived"
        ) from None
    return out


class _Ranges:
    """Membership in sorted, disjoint [first, last] ranges, for positions asked in ascending order."""

    def __init__(self, ranges: list[tuple[int, int]]):
        self._ranges = iter(ranges)
        self._lo, self._hi = next(self._ranges, _END)

    def __contains__(self, position: int) -> bool:
        while position > self._hi:
            self._lo, self._hi = next(self._ranges, _END)
        return self._lo <= position


def _pruned_ranges(store: EventStore, first: int, through: int) -> list[tuple[int, int]]:
    """The ranges of positions in first..through whose payload is already pruned (``data`` NULL):
    the header lists them ahead of the entries, so that a verifier can tell them from a payload
    stripped from the archive later."""
    ranges: list[tuple[int, int]] = []
    for (position,) in store.backend.query(
        "SELECT position FROM events WHERE position >= ? AND position <= ? AND data IS NULL ORDER BY position",
        (first, through),
    ):
        if ranges and ranges[-1][1] == position - 1:
            ranges[-1] = (ranges[-1][0], position)
        else:
            ranges.append((position, position))
    return ranges


def _choose_checkpoint(store: EventStore, through: int, signer: notes.Signer | None) -> notes.SignedCheckpoint:
    """The smallest stored checkpoint covering ``through`` (of the signer's origin, if given),
    else a new one signed with ``signer``."""
    best: tuple[int, str] | None = None
    for _origin, size, _root, note in store.checkpoints(None if signer is None else signer.name):
        if size >= through and (best is None or size < best[0]):
            best = (size, note)
    if best is not None:
        note_ = notes.Note.parse(best[1])
        if signer is not None and not note_.signed_by(signer.verifier):
            raise VerificationError(
                f"the stored checkpoint of size {best[0]} does not carry this key's valid signature: "
                "the checkpoints table was tampered with"
            )
        return notes.SignedCheckpoint(notes.Checkpoint.parse(note_.text), note_)
    if signer is None:
        raise UserError(
            f"no stored checkpoint covers position {through}; give --key (the log's signing key) to sign one"
        )
    return store.checkpoint(signer)


def write_archive(
    store: EventStore,
    path: str | os.PathLike[str],
    through: int,
    *,
    from_position: int = 1,
    signer: notes.Signer | None = None,
    by: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> ArchiveInfo:
    """Write entries ``from_position..through`` to ``path`` as an archive and record it in the log.

    Anchored to the smallest stored checkpoint of size >= ``through`` (of ``signer``'s origin
    if given); with none, a checkpoint is signed with ``signer``. Every entry is verified as
    it is written (as ``verify`` does) and the proof is checked against the checkpoint's root
    before the file appears under ``path``; nothing is written on any failure. An existing
    ``path`` is refused unless ``replace``. Appends an ``archive.created`` event (stream
    ``archives``) naming the file's SHA-256, the range, the checkpoint and ``by`` (default:
    the OS user).
    """
    who = check_name(by or _os_user(), "--by")
    target = Path(path)
    head = store.backend.head()[0]
    if not 1 <= from_position <= through:
        raise UserError(f"--from {from_position} must be between 1 and --through {through}")
    if through > head:
        raise UserError(f"--through {through} is beyond the log's head ({head} entries)")
    if target.is_dir():
        raise UserError(f"{target} is a directory; give the archive's file name")
    if not replace and target.exists():
        raise UserError(f"{target} exists; refusing to overwrite an archive (remove it, or use --replace)")
    signed = _choose_checkpoint(store, through, signer)
    cp = signed.checkpoint
    perfect = store.tree.subtree_fn()
    compact = merkle.CompactRange.from_frontier(
        from_position - 1, [perfect(a, b) for a, b in merkle.decompose(from_position - 1)]
    )
    right = merkle.consistency_path(through, cp.size, perfect) if through < cp.size else []
    prev = GENESIS_HASH
    if from_position > 1:
        before = store.backend.row_at(from_position - 1)
        if before is None:
            raise VerificationError(f"the log has no entry at position {from_position - 1}: it was cut")
        prev = before.hash
    pruned = _pruned_ranges(store, from_position, through)
    header = ArchiveHeader(
        format=FORMAT,
        hash_scheme=HASH_SCHEME,
        from_position=from_position,
        through=through,
        pruned=pruned,
        prev_hash=prev.hex(),
        checkpoint=signed.format(),
        left=[h.hex() for h in compact.frontier],
        right=[h.hex() for h in right],
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    sha = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "xb") as raw:
            z = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, 31)  # 31: gzip container

            def put(chunk: bytes) -> None:
                nonlocal size
                if chunk:
                    sha.update(chunk)
                    size += len(chunk)
                    raw.write(chunk)

            encoder = msgspec.json.Encoder()
            put(z.compress(encoder.encode(header) + b"\n"))
            sha256 = hashlib.sha256
            stack, count = compact.frontier, compact.size
            listed = _Ranges(pruned)

            def write_rows(rows: list[Row]) -> None:
                nonlocal count
                put(z.compress(encoder.encode_lines(_entries(rows))))
                pop, push = stack.pop, stack.append
                for r in rows:  # CompactRange.append with merkle.leaf_hash and node_hash, inlined: per entry
                    if r.data is None and r.position not in listed:
                        raise UserError(
                            f"the payload of position {r.position} was pruned while it was being archived; "
                            "nothing was written: run the command again"
                        )
                    h = sha256(b"\x00" + r.hash).digest()
                    n = count
                    while n & 1:
                        h = sha256(b"\x01" + pop() + h).digest()
                        n >>= 1
                    push(h)
                    count += 1

            report = store.verify(from_position, through, progress=progress, batch_size=_BATCH, on_rows=write_rows)
            if not report.ok:
                p = report.problem
                assert p is not None
                raise VerificationError(
                    f"refusing to archive: the log does not verify at position {p.position} ({p.kind}): {p.message}"
                )
            compact = merkle.CompactRange.from_frontier(count, stack)
            put(z.flush())
            try:
                merkle.verify_consistency(through, cp.size, compact.root(), cp.root, right)
            except VerificationError:
                raise VerificationError(
                    f"refusing to archive: entries 1..{through} do not lead to the root of the checkpoint of "
                    f"size {cp.size} ({cp.origin}): the stored Merkle tree is damaged (run 'eventstore audit "
                    "check') or the log was rewritten"
                ) from None
            raw.flush()
            os.fsync(raw.fileno())
        if replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # refuses an existing name, atomically
            except FileExistsError:
                raise UserError(f"{target} exists; refusing to overwrite an archive") from None
            os.unlink(tmp)
        fsync_dir(target)
    finally:
        if tmp.exists():
            tmp.unlink()
    info = ArchiveInfo(
        file=str(target),
        sha256=sha.hexdigest(),
        bytes=size,
        from_position=from_position,
        through=through,
        entries=through - from_position + 1,
        origin=cp.origin,
        tree_size=cp.size,
        root=cp.root.hex(),
        payloads_absent=sum(b - a + 1 for a, b in pruned),
    )
    event = ArchiveCreated(
        file=target.name,
        sha256=info.sha256,
        bytes=size,
        from_position=from_position,
        through=through,
        origin=cp.origin,
        tree_size=cp.size,
        root=info.root,
        by=who,
    )
    receipt = store.append(ARCHIVES_STREAM, [NewEvent(type=ARCHIVE_CREATED, data=event)])[0]
    return msgspec.structs.replace(info, event_position=receipt.position)


def archived_through(store: EventStore) -> int | None:
    """The highest position covered by an archive recorded in the log (``archive.created``), or None.

    What the log says was archived; it does not check that the file still exists.
    """
    best: int | None = None
    for ev in store.read_stream(ARCHIVES_STREAM):
        if ev.type != ARCHIVE_CREATED or not isinstance(ev.data, dict):
            continue
        through = ev.data.get("through")
        if type(through) is int and (best is None or through > best):
            best = through
    return best


def prune_archived(
    store: EventStore,
    path: str | os.PathLike[str],
    verifier: notes.Verifier,
    *,
    by: str = "library",
    dry_run: bool = False,
    batch_size: int = 5000,
) -> PruneReport:
    """Remove from the live log the payloads an archive holds (``eventstore prune --archived``).

    Only after the archive checks out: it verifies with the log's key (``verify_archive``), it
    is one this log recorded (an ``archive.created`` with the file's SHA-256), and it holds
    exactly the live log's entries (its first ``prev_hash`` and its last ``hash`` are the live
    log's; the chain between them then is too). Then the payloads of its positions are pruned
    as ``retention.prune(through=..., since=...)`` does: holds and the log's governance events
    are honoured, and one ``retention.pruned`` records it with the archive's name and hash.
    The archive and the live log together still answer every read and proof.
    """
    from ..retention import prune

    report = verify_archive(path, verifier)
    if not report.ok:
        p = report.problem
        assert p is not None
        raise VerificationError(
            f"{path}: the archive does not verify (position {p.position}, {p.kind}: {p.message}); nothing was pruned"
        )
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    recorded = [
        ev
        for ev in store.read_stream(ARCHIVES_STREAM)
        if ev.type == ARCHIVE_CREATED and isinstance(ev.data, dict) and ev.data.get("sha256") == digest
    ]
    if not recorded:
        raise UserError(
            f"{path} (sha256 {digest[:16]}…) is not an archive this log recorded (stream {ARCHIVES_STREAM!r}); "
            "nothing was pruned"
        )
    first: RecordedEvent | None = None
    last: RecordedEvent | None = None
    for ev in read_archive(path):
        first = first or ev
        last = ev
    assert first is not None and last is not None  # a verified archive holds its range
    for ev in (first, last):
        row = store.backend.row_at(ev.position)
        if row is None or row.hash.hex() != ev.hash or row.prev_hash.hex() != ev.prev_hash:
            raise VerificationError(
                f"{path}: position {ev.position} of the archive is not the live log's entry at that position "
                "(another history, or a restored store); nothing was pruned"
            )
    return prune(
        store,
        dry_run=dry_run,
        through=report.through,
        since=report.from_position,
        reason=f"archived in {Path(path).name} (sha256 {digest})",
        by=by,
        batch_size=batch_size,
    )


# -- reading and verifying ----------------------------------------------------------------


class _Bad(Exception):
    """An archive that does not verify: the problem found (internal)."""

    def __init__(self, position: int, kind: ProblemKind, message: str):
        super().__init__(message)
        self.problem = Problem(position=position, kind=kind, message=message)


_HEADER = msgspec.json.Decoder(ArchiveHeader)
_ENTRY = msgspec.json.Decoder(ArchiveEntry)


def _hex32(text: str, what: str, position: int) -> bytes:
    try:
        b = bytes.fromhex(text)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise _Bad(position, "type", f"{what} is not 32 bytes of hex: the archive was changed")
    return b


class _Reader:
    """Streams an archive: its header, then its entries as ``Row`` batches.

    It decompresses incrementally and splits the lines itself, so that when the file is cut
    short or damaged, every complete line before that is still checked and the problem is
    named at the first position not wholly present (a buffered ``GzipFile`` reader hears of
    the cut only when it refills its buffer, up to 64 KiB of entries earlier).
    """

    def __init__(self, source: IO[bytes], name: str):
        self.name = name
        self.header: ArchiveHeader | None = None
        self.next_position = 0
        """The position of the line being read (0: the header); problems are named at it."""
        self._lines = self._decompress(source)

    def _decompress(self, source: IO[bytes]) -> Iterator[bytes]:
        """The content's lines, without their newline, as they are decompressed."""
        z = zlib.decompressobj(31)  # 31: one gzip member (RFC 1952), no zlib or raw stream
        parts: list[bytes] = []  # the line being read, so far
        pending = 0  # its length
        empty = True
        while not z.eof:
            chunk = source.read(_CHUNK)
            if not chunk:
                if empty:
                    raise _Bad(0, "unreadable", f"{self.name} is empty: not an eventstore archive")
                raise self._cut()
            empty = False
            try:
                data = z.decompress(chunk)
            except zlib.error as e:
                p = self.next_position
                if p == 0:
                    raise _Bad(
                        0, "unreadable", f"{self.name} is not a gzip-compressed eventstore archive ({e})"
                    ) from None
                raise _Bad(p, "unreadable", f"the archive is damaged at or after position {p}: {e}") from None
            *complete, rest = data.split(b"\n")
            if complete:
                complete[0] = b"".join([*parts, complete[0]])
                parts, pending = [], 0
                for line in complete:
                    if len(line) > MAX_LINE_BYTES:
                        raise self._too_long()
                    yield line
            if rest:
                parts.append(rest)
                pending += len(rest)
                if pending > MAX_LINE_BYTES:
                    raise self._too_long()
        if parts:
            raise self._cut("the archive's content ends without a newline")
        if z.unused_data or source.read(1):
            raise _Bad(
                self.next_position,
                "unreadable",
                "bytes follow the archive's gzip member (an archive is exactly one member): it was changed",
            )

    def _too_long(self) -> _Bad:
        p = self.next_position
        return _Bad(
            p,
            "unreadable",
            f"the line at position {p} is longer than {MAX_LINE_BYTES} bytes decompressed: not an eventstore archive",
        )

    def _cut(self, what: str = "the archive ends") -> _Bad:
        """A truncation, named at the first position not wholly present."""
        p, header = self.next_position, self.header
        if header is None:
            where = "inside its header"
        elif p > header.through:
            where = f"inside its gzip trailer, after its last entry (position {header.through})"
        else:
            where = f"before the entry at position {p} is wholly present"
        return _Bad(p, "truncated", f"{what} {where}: it was truncated")

    def read_header(self) -> ArchiveHeader:
        line = next(self._lines, None)
        if line is None:
            raise _Bad(0, "unreadable", f"{self.name} is empty: not an eventstore archive")
        try:
            header = _HEADER.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise _Bad(0, "unreadable", f"{self.name} has no eventstore archive header: {e}") from None
        if header.format not in (FORMAT, FORMAT_V1):
            raise _Bad(0, "unreadable", f"{self.name} is in format {header.format!r}, not {FORMAT!r} or {FORMAT_V1!r}")
        if header.hash_scheme != HASH_SCHEME:
            raise _Bad(0, "unreadable", f"the archive's hash scheme {header.hash_scheme!r} is not {HASH_SCHEME!r}")
        if not 1 <= header.from_position <= header.through:
            raise _Bad(0, "unreadable", f"the header's range {header.from_position}..{header.through} is empty")
        if header.format == FORMAT_V1 and header.pruned is not None:
            raise _Bad(0, "unreadable", f"an {FORMAT_V1} header has no pruned list ({FORMAT} added it)")
        if header.format == FORMAT and header.pruned is None:
            raise _Bad(0, "unreadable", f"the header has no pruned list, which {FORMAT} requires")
        last = header.from_position - 2
        for first, end in header.pruned or ():
            if not last + 1 < first <= end <= header.through:
                raise _Bad(
                    0,
                    "unreadable",
                    f"the header's pruned range [{first}, {end}] is not within {header.from_position}.."
                    f"{header.through}, ascending, apart from the one before",
                )
            last = end
        self.header = header
        self.next_position = header.from_position
        return header

    def rows(self) -> Iterator[list[Row]]:
        """Entries in batches, as rows; raises _Bad for a line that cannot be one, a payload absent
        that the header does not list as pruned (or present that it does), or a truncated or
        overlong archive. Chain checks are the caller's (``ChainVerifier``): the rows read before
        a problem are yielded first, so that an earlier bad entry is the one named."""
        header = self.header
        assert header is not None
        prev = _hex32(header.prev_hash, "the header's prev_hash", header.from_position)
        listed = None if header.pruned is None else _Ranges(header.pruned)
        batch: list[Row] = []
        sha256 = hashlib.sha256
        try:
            for line in self._lines:
                position = self.next_position
                if position > header.through:
                    raise _Bad(position, "unreadable", f"the archive holds entries after position {header.through}")
                try:
                    e = _ENTRY.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError) as err:
                    raise _Bad(
                        position, "unreadable", f"the entry line for position {position} is not an entry: {err}"
                    ) from None
                data = None if e.data is None else e.data.encode()
                metadata = e.metadata.encode()
                if data is None:
                    if e.data_digest is None:
                        raise _Bad(
                            position,
                            "unreadable",
                            f"the entry at position {e.position} has neither data nor data_digest",
                        )
                    if listed is not None and position not in listed:
                        raise _Bad(
                            position,
                            "missing",
                            f"the payload of position {position} was removed from the archive: the header does "
                            "not list it as pruned before archiving",
                        )
                    data_digest = _hex32(e.data_digest, "data_digest", position)
                elif e.data_digest is not None:
                    raise _Bad(
                        position, "unreadable", f"the entry at position {e.position} has both data and data_digest"
                    )
                else:
                    if listed is not None and position in listed:
                        raise _Bad(
                            position,
                            "unreadable",
                            f"the header lists position {position} as pruned before archiving, yet its payload is "
                            "here: the header was changed",
                        )
                    data_digest = sha256(data).digest()
                h = _hex32(e.hash, "hash", position)
                batch.append(
                    Row(
                        e.position,
                        e.stream_id,
                        e.version,
                        e.type,
                        data,
                        metadata,
                        data_digest,
                        sha256(metadata).digest(),
                        e.recorded_at,
                        prev,
                        h,
                        e.event_id,
                    )
                )
                prev = h
                self.next_position = position + 1
                if len(batch) >= _BATCH:
                    yield batch
                    batch = []
        except _Bad:
            if batch:
                yield batch
            raise
        if batch:
            yield batch
        if self.next_position <= header.through:
            raise _Bad(
                self.next_position,
                "truncated",
                f"the archive ends before position {self.next_position} (it should run to {header.through}): "
                "it was truncated",
            )


def _before(header: ArchiveHeader) -> Callable[[str, int, int], int] | None:
    """For a segment after position 1, a stream first seen in it may have begun before it:
    its earlier versions are in the log (or an earlier archive), not here."""
    if header.from_position == 1:
        return None
    return lambda _stream, version, _position: version - 1


def _open(path: str | os.PathLike[str]) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as e:
        raise UserError(f"cannot read archive {path}: {e.strerror}") from None


def verify_archive(
    path: str | os.PathLike[str], verifier: notes.Verifier, *, progress: Progress | None = None
) -> ArchiveReport:
    """Check an archive offline (docs/archive.md, "Verifying an archive"): the checkpoint's
    signature, every entry's payload digests, hash and link (as ``verify``), and that the
    entries lead, with the header's hashes, to the checkpoint's root; in a v2 archive, that
    each payload absent is one the header lists as pruned before archiving. The report names
    the first problem (a position, 0 for the header or the checkpoint) and counts the payloads
    absent, as the archive may be their only copy."""
    checked, origin, size, root = 0, None, None, None
    absent, absent_at = 0, list[int]()
    header: ArchiveHeader | None = None
    with _open(path) as f:
        reader = _Reader(f, str(path))
        try:
            header = reader.read_header()
            try:
                signed = notes.open_checkpoint(header.checkpoint, verifier)
            except (VerificationError, UserError) as e:
                raise _Bad(0, "signature", f"the archive's checkpoint does not verify with this key: {e}") from None
            cp = signed.checkpoint
            origin, size, root = cp.origin, cp.size, cp.root.hex()
            if cp.size < header.through:
                raise _Bad(
                    header.through,
                    "truncated",
                    f"the archive's checkpoint (size {cp.size}) does not cover position {header.through}",
                )
            n = header.from_position - 1
            left = [_hex32(h, "a left hash", 0) for h in header.left]
            right = [_hex32(h, "a right hash", 0) for h in header.right]
            if len(left) != n.bit_count():
                raise _Bad(
                    0, "unreadable", f"the header has {len(left)} left hashes; {n} entries before need {n.bit_count()}"
                )
            compact = merkle.CompactRange.from_frontier(n, left)
            chain = ChainVerifier(
                header.from_position,
                _hex32(header.prev_hash, "the header's prev_hash", header.from_position),
                _before(header),
            )
            total = header.through - header.from_position + 1
            leaf_hash, append = merkle.leaf_hash, compact.append
            for rows in reader.rows():
                good = chain.feed(rows)
                for r in rows[: chain.checked - checked]:  # the rows that passed
                    append(leaf_hash(r.hash))
                    if r.data is None:
                        absent += 1
                        if absent <= _SHOWN:
                            absent_at.append(r.position)
                checked = chain.checked
                if not good:
                    assert chain.problem is not None
                    raise _Bad(chain.problem.position, chain.problem.kind, chain.problem.message)
                if progress:
                    progress(checked, total)
            try:
                merkle.verify_consistency(header.through, cp.size, compact.root(), cp.root, right)
            except VerificationError as e:
                raise _Bad(
                    header.from_position,
                    "fork",
                    f"entries {header.from_position}..{header.through} do not lead to the signed checkpoint's root "
                    f"({e}): entries were rewritten with their hashes recomputed, or the checkpoint or the "
                    "header's hashes were replaced",
                ) from None
        except _Bad as bad:
            return ArchiveReport(
                ok=False,
                checked=checked,
                from_position=header.from_position if header else 0,
                through=header.through if header else 0,
                origin=origin,
                tree_size=size,
                root=root,
                problem=bad.problem,
                format=header.format if header else None,
                payloads_absent=absent,
                payloads_absent_at=absent_at,
            )
    return ArchiveReport(
        ok=True,
        checked=checked,
        from_position=header.from_position,
        through=header.through,
        origin=origin,
        tree_size=size,
        root=root,
        format=header.format,
        payloads_absent=absent,
        payloads_absent_at=absent_at,
    )


def read_archive(path: str | os.PathLike[str], from_position: int = 1) -> Iterator[RecordedEvent]:
    """The archive's events as ``read`` gives them (from ``from_position``), with no database.

    The chain is checked as the events are read (a tampered entry raises VerificationError
    naming its position; no key is needed, so the signature is not: ``verify_archive`` does
    that). Personal fields stay encrypted envelopes: the keys are in the store, never in an
    archive. A pruned payload reads as in the log: ``pruned`` true, ``data`` None.
    """
    with _open(path) as f:
        reader = _Reader(f, str(path))
        try:
            header = reader.read_header()
            chain = ChainVerifier(
                header.from_position,
                _hex32(header.prev_hash, "the header's prev_hash", header.from_position),
                _before(header),
            )
            registry = AGENTS.registry
            for rows in reader.rows():
                if not chain.feed(rows):
                    assert chain.problem is not None
                    raise _Bad(chain.problem.position, chain.problem.kind, chain.problem.message)
                for r in rows:
                    if r.position >= from_position:
                        yield to_recorded(r, None, registry)
        except _Bad as bad:
            p = bad.problem
            raise VerificationError(f"archive {path}: position {p.position} ({p.kind}): {p.message}") from None
