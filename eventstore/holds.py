"""Legal holds: streams or a data subject frozen for a legal case (docs/operations.md, "Legal holds").

A held event's payload is never pruned (``eventstore.retention.prune``), and ``erase`` of a
held subject is refused with the hold's reason unless overridden, the override being recorded
(``hold.overridden``). Holds live in ``legal_holds`` (migration 0008); placing and releasing one
appends ``hold.placed`` / ``hold.released`` to stream ``holds`` in the same transaction as the
table change, so the table and the log never disagree.

A stream hold matches stream ids by ``fnmatch.fnmatchcase`` glob (``agent-7/*``); a subject hold
matches the events whose personal fields are encrypted under that subject (``NewEvent.subject``)
and the subject's erasure. Erasing a subject is refused by either kind: a subject hold on it, or
a stream hold over a stream where the subject has personal fields (erasure would destroy them).
"""

from __future__ import annotations

import fnmatch
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from . import codec, shredding
from .backends import sql
from .clock import utc_now
from .commit import Request
from .errors import LegalHoldActive, UserError
from .mapping import MAX_NAME_BYTES
from .records import NewEvent, Receipt

if TYPE_CHECKING:
    from .store import EventStore

HOLDS_STREAM = "holds"
"""The stream of ``hold.placed``, ``hold.released`` and ``hold.overridden``."""


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """One legal hold; ``released_at`` is None while it is in force."""

    id: str
    kind: str
    """``streams`` (``pattern`` is a stream glob) or ``subject`` (``pattern`` is a subject id)."""
    pattern: str
    reason: str
    placed_at: str
    placed_by: str
    released_at: str | None = None
    released_by: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None


def _check_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{what} must not be empty")
    if len(value.encode()) > MAX_NAME_BYTES * 8:
        raise UserError(f"{what} is longer than {MAX_NAME_BYTES * 8} bytes")
    return value


def selector(streams: str | None, other: str | None, other_name: str) -> tuple[str, str]:
    """(kind, pattern) from exactly one of ``streams`` and the other selector, else a UserError."""
    if (streams is None) == (other is None):
        raise UserError(f"give exactly one of --streams PATTERN and --{other_name}")
    if streams is not None:
        return "streams", _check_text(streams, "the --streams pattern")
    assert other is not None
    return other_name, _check_text(other, f"the --{other_name} value")


def append_with(store: EventStore, stream: str, events: Sequence[NewEvent], effects: Sequence[Any]) -> Receipt:
    """Append events and run ``effects`` (side-table statements) in one transaction: both or neither."""
    req = Request(stream, None, store.prepare(events))
    req.effects = list(effects)
    return store.commits.submit([req], atomic=True)[0][-1]


def place(store: EventStore, *, streams: str | None = None, subject: str | None = None, reason: str, by: str) -> Hold:
    """Place a hold on the streams matching a glob, or on a data subject; appends ``hold.placed``."""
    kind, pattern = selector(streams, subject, "subject")
    _check_text(reason, "the hold's --reason")
    _check_text(by, "who places the hold (--by)")
    hold = Hold(
        id="hold-" + secrets.token_hex(4), kind=kind, pattern=pattern, reason=reason, placed_at=utc_now(), placed_by=by
    )
    append_with(
        store,
        HOLDS_STREAM,
        [
            NewEvent(
                type="hold.placed",
                data={"hold_id": hold.id, "kind": kind, "pattern": pattern, "reason": reason, "by": by},
            )
        ],
        [(sql.HOLD_PLACE, (hold.id, kind, pattern, reason, hold.placed_at, by))],
    )
    return hold


def release(store: EventStore, hold_id: str, *, by: str, reason: str | None = None) -> Hold:
    """Release a hold in force; appends ``hold.released``. Its row stays, as the history."""
    _check_text(by, "who releases the hold (--by)")
    hold = get(store, hold_id)
    if not hold.active:
        raise UserError(f"hold {hold_id!r} was released already at {hold.released_at} by {hold.released_by}")
    data: dict[str, Any] = {"hold_id": hold_id, "by": by}
    if reason is not None:
        data["reason"] = reason
    append_with(
        store,
        HOLDS_STREAM,
        [NewEvent(type="hold.released", data=data)],
        [(sql.HOLD_RELEASE, (utc_now(), by, hold_id))],
    )
    return get(store, hold_id)


def holds(store: EventStore, *, active_only: bool = False) -> list[Hold]:
    """Every hold, oldest first (released ones too unless ``active_only``)."""
    out = [
        Hold(
            id=i,
            kind=k,
            pattern=p,
            reason=r,
            placed_at=pa,
            placed_by=pb,
            released_at=ra,
            released_by=rb,
        )
        for i, k, p, r, pa, pb, ra, rb in store.backend.query(sql.HOLDS)
    ]
    return [h for h in out if h.active] if active_only else out


def get(store: EventStore, hold_id: str) -> Hold:
    for h in holds(store):
        if h.id == hold_id:
            return h
    raise UserError(f"no legal hold with id {hold_id!r} (see 'eventstore hold list')")


class HoldMatcher:
    """Answers "is this event held?" for a set of holds in force, fast enough for a prune scan."""

    def __init__(self, active: Sequence[tuple[str, str, str, str]]):
        self.streams = [(i, p) for i, k, p, _ in active if k == "streams"]
        self.subjects = {p: i for i, k, p, _ in active if k == "subject"}
        self._by_stream: dict[str, str | None] = {}

    @property
    def needs_data(self) -> bool:
        """Subject holds are matched on the payload's personal envelopes."""
        return bool(self.subjects)

    def __bool__(self) -> bool:
        return bool(self.streams or self.subjects)

    def held_by(self, stream_id: str, data: bytes | None = None) -> str | None:
        """The id of a hold covering the event, or None."""
        h = self._by_stream.get(stream_id, "")
        if h == "":
            h = next((i for i, p in self.streams if fnmatch.fnmatchcase(stream_id, p)), None)
            if len(self._by_stream) < 100_000:
                self._by_stream[stream_id] = h
        if h is not None or not self.subjects or data is None or b'"$personal"' not in data:
            return h
        try:
            subjects = shredding.subjects_in(codec.decode(data))
        except Exception:  # a payload that is not JSON names no subject
            return None
        return next((self.subjects[s] for s in subjects if s in self.subjects), None)


def subject_holds(store: EventStore, subject: str) -> list[Hold]:
    """Holds in force on a subject: on the subject itself, on its erasure stream, or on a stream
    that holds personal fields of the subject (erasing would destroy held evidence)."""
    from .store import erasure_stream

    stream = erasure_stream(subject)
    active = holds(store, active_only=True)
    held = [
        h
        for h in active
        if (h.kind == "subject" and h.pattern == subject)
        or (h.kind == "streams" and fnmatch.fnmatchcase(stream, h.pattern))
    ]
    rest = [h for h in active if h.kind == "streams" and h not in held]
    if rest:
        held += _holds_over_subject_streams(store, subject, rest)
    return held


def _holds_over_subject_streams(store: EventStore, subject: str, stream_holds: list[Hold]) -> list[Hold]:
    """The stream holds among ``stream_holds`` covering a stream with an envelope of ``subject``.

    Reads only the streams those holds match (an erase is rare; a hold names few streams)."""
    streams = [r[0] for r in store.backend.query("SELECT DISTINCT stream_id FROM events")]
    found: list[Hold] = []
    for h in stream_holds:
        if any(_names_subject(store, s, subject) for s in streams if fnmatch.fnmatchcase(s, h.pattern)):
            found.append(h)
    return found


def _names_subject(store: EventStore, stream_id: str, subject: str, page: int = 1000) -> bool:
    version = 1
    while rows := store.backend.read_stream(stream_id, version, page):
        for row in rows:
            if row.data is not None and b'"$personal"' in row.data:
                try:
                    if subject in shredding.subjects_in(codec.decode(row.data)):
                        return True
                except Exception:  # a payload that is not JSON names no subject
                    continue
        version = rows[-1].version + 1
    return False


def check_erase(store: EventStore, subject: str, override_hold: str | None, by: str) -> list[Request]:
    """Refuse the erasure of a held subject (``LegalHoldActive``, naming the hold and its reason),
    or, with ``override_hold`` (a reason), the ``hold.overridden`` request to commit with the erasure."""
    held = subject_holds(store, subject)
    if not held:
        return []
    if override_hold is None or not override_hold.strip():
        h = held[0]
        raise LegalHoldActive(
            f"subject {subject!r} is under legal hold {h.id} ({h.reason!r}, placed by {h.placed_by}"
            + (
                f"; it holds streams {h.pattern!r}, where the subject has personal fields"
                if h.kind == "streams"
                else ""
            )
            + "): "
            "erasure refused; release the hold, or override it with a reason (--override-hold REASON), "
            "which is recorded in the log"
        )
    events = [
        NewEvent(
            type="hold.overridden",
            data={"hold_id": h.id, "subject_id": subject, "operation": "erase", "reason": override_hold, "by": by},
        )
        for h in held
    ]
    return [Request(HOLDS_STREAM, None, store.prepare(events))]
