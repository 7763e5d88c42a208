"""Chain verification over stored rows: the same checks a standalone auditor makes.

For each row, in position order: positions are gapless; the stored payloads hash
to their stored digests (payloads are rehashed, not trusted); the entry hash
recomputes from the row's columns; ``prev_hash`` equals the previous row's hash;
and each stream's versions run 1, 2, 3, ... without gaps or repeats.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable

from .errors import DatabaseDamaged
from .hashing import GENESIS_HASH, entry_hash, hash_from_parts, lp
from .records import COLUMNS, Problem, ProblemKind, Row

_sha256 = hashlib.sha256


_TYPE_ERRORS = (TypeError, AttributeError, ValueError, OverflowError, struct.error)
"""What hashing raises on a value of the wrong storage type (str for bytes, NULL, a float...)."""
_TYPES: tuple[tuple[type, ...], ...] = (
    (int,),
    (str,),
    (int,),
    (str,),
    (bytes, type(None)),
    (bytes, type(None)),
    (bytes,),
    (bytes,),
    (str,),
    (bytes,),
    (bytes,),
    (str, type(None)),
)
"""The Python type of each column of Row, in order; BLOB columns read back as bytes, TEXT as str."""
_HASH_COLUMNS = frozenset({"data_digest", "metadata_digest", "prev_hash", "hash"})


def wrong_type(row: tuple[object, ...]) -> str | None:
    """Name the first column whose value has the wrong type (or size) for its column, if any."""
    if len(row) != len(COLUMNS):
        return f"the row has {len(row)} columns, not {len(COLUMNS)}"
    for name, value, types in zip(COLUMNS, row, _TYPES):
        if type(value) not in types:
            found = {str: "text", bytes: "a blob", int: "an integer", float: "a real number", type(None): "NULL"}.get(
                type(value), type(value).__name__
            )
            wanted = {str: "text", bytes: "a blob", int: "an integer"}[types[0]]
            hint = (
                " (a blob rewritten as text, e.g. by replace() in the sqlite3 shell)"
                if types[0] is bytes and type(value) is str
                else ""
            )
            return f"column {name} holds {found}, not {wanted}{hint}: the entry was changed"
        if name in _HASH_COLUMNS and len(value) != 32:  # type: ignore[arg-type]
            return f"column {name} holds {len(value)} bytes, not 32: the entry was changed"  # type: ignore[arg-type]
        if types[0] is int and not 1 <= value < 1 << 63:  # type: ignore[operator]
            return f"column {name} holds {value}, outside 1..2^63-1: the entry was changed"
    return None


def _type_message(row: tuple[object, ...] | None, error: Exception) -> str:
    found = wrong_type(row) if row is not None else None
    return found or f"the entry cannot be hashed ({type(error).__name__}): the entry was changed"


class ChainVerifier:
    """Feeds rows in position order; stops at the first problem.

    ``prev_hash`` is the hash of the row before the first one fed (GENESIS_HASH when
    starting at position 1). ``stream_version_before(stream_id, position)`` answers,
    for partial ranges, the version a stream had just before ``position``; with a
    range starting at 1 it is never called.
    """

    def __init__(
        self,
        first_position: int = 1,
        prev_hash: bytes = GENESIS_HASH,
        stream_version_before: Callable[[str, int, int], int] | None = None,
    ):
        self.next_position = first_position
        self.prev_hash = prev_hash
        self.versions: dict[str, int] = {}
        self.checked = 0
        self.problem: Problem | None = None
        self._lookup = stream_version_before

    def feed(self, rows: Iterable[Row]) -> bool:
        """Check rows; return False (and set ``problem``) at the first bad one."""
        if self.problem is not None:
            return False
        nxt = self.next_position
        prev = self.prev_hash
        versions = self.versions
        checked = 0
        sha = _sha256
        entry_hash_of = hash_from_parts
        last_meta: bytes | None = None
        last_meta_digest = b""
        # lp() of stream ids, types and timestamps, which repeat from row to row (a commit's rows
        # share one recorded_at): encode each once per call instead of once per row.
        lps: dict[str, bytes] = {}
        last_recorded_at, recorded_at_lp = "", lp("")  # lp(""), not b"": an empty time is hashed too
        row: Row | None = None
        # A value of the wrong type (e.g. a payload edited to TEXT) raises in here: the handler
        # turns it into a problem at that position. A try block costs nothing until it raises.
        try:
            for row in rows:
                (
                    position,
                    stream_id,
                    version,
                    type_,
                    data,
                    metadata,
                    data_digest,
                    metadata_digest,
                    recorded_at,
                    prev_hash,
                    stored_hash,
                    event_id,
                ) = row
                if position != nxt:
                    if position > nxt:
                        self._fail(
                            nxt, "gap", f"positions {nxt}..{position - 1} are missing (next entry found is {position})"
                        )
                    else:
                        self._fail(nxt, "gap", f"expected position {nxt}, found {position} again or out of order")
                    break
                if data is not None and sha(data).digest() != data_digest:
                    self._fail(position, "data_digest", "data does not hash to data_digest: the payload was changed")
                    break
                if metadata is not None:
                    # Equal bytes to the previous row's (common: one agent's events) hash to the digest
                    # already checked there, so compare digests instead of hashing again.
                    if metadata == last_meta:
                        meta_ok = metadata_digest == last_meta_digest
                    else:
                        meta_ok = sha(metadata).digest() == metadata_digest
                        last_meta, last_meta_digest = metadata, metadata_digest
                    if not meta_ok:
                        self._fail(
                            position,
                            "metadata_digest",
                            "metadata does not hash to metadata_digest: the metadata was changed",
                        )
                        break
                if prev_hash != prev:
                    self._fail(
                        position,
                        "link",
                        "prev_hash does not equal the previous entry's hash: an entry was removed, inserted or reordered",
                    )
                    break
                stream_lp = lps.get(stream_id)
                if stream_lp is None:
                    stream_lp = lps[stream_id] = lp(stream_id)
                type_lp = lps.get(type_)
                if type_lp is None:
                    type_lp = lps[type_] = lp(type_)
                if recorded_at != last_recorded_at:
                    last_recorded_at, recorded_at_lp = recorded_at, lp(recorded_at)
                h = entry_hash_of(
                    position,
                    version,
                    stream_lp,
                    type_lp,
                    recorded_at_lp,
                    data_digest,
                    metadata_digest,
                    prev_hash,
                    None if event_id is None else lp(event_id),
                )
                if h != stored_hash:
                    self._fail(position, "hash", "entry hash does not match the entry's columns: the entry was changed")
                    break
                last = versions.get(stream_id)
                if last is None:
                    last = self._lookup(stream_id, version, position) if (self._lookup and version != 1) else 0
                if version != last + 1:
                    self._fail(position, "version", f"stream {stream_id!r} goes from version {last} to {version}")
                    break
                versions[stream_id] = version
                prev = stored_hash
                nxt = position + 1
                checked += 1
        except _TYPE_ERRORS as e:
            self._fail(nxt, "type", _type_message(row, e))
        except DatabaseDamaged as e:  # from the stream-version lookup of a partial range
            self._fail(nxt, "unreadable", f"position {nxt} cannot be checked: {e}")
        if self.problem is not None and self.problem.kind not in ("type", "unreadable") and row is not None:
            wrong = wrong_type(row)  # a failed check may come from a value of the wrong type
            if wrong is not None and (type(row[0]) is not int or row[0] == self.problem.position):
                self.problem = Problem(position=self.problem.position, kind="type", message=wrong)
        self.checked += checked
        self.next_position = nxt
        self.prev_hash = prev
        return self.problem is None

    def _fail(self, position: int, kind: ProblemKind, message: str) -> None:
        self.problem = Problem(position=position, kind=kind, message=message)


def recompute_hash(row: Row) -> bytes:
    """The entry hash a row's columns give (its stored ``hash`` is not used)."""
    return entry_hash(
        row.position,
        row.stream_id,
        row.version,
        row.type,
        row.recorded_at,
        row.data_digest,
        row.metadata_digest,
        row.prev_hash,
        row.event_id,
    )
