"""Retention: policies, the minimum retention floor, and pruning of payloads (docs/operations.md, "Retention").

A policy keeps the events of the streams matching a glob (``--streams 'agent-*'``), or of one
event type (``--type tool.finished``), for a duration; ``prune`` then removes the payload
(``data``, and the personal envelope inside it) of every event older than that, leaving the
row, its digests, metadata and hash: every entry hash, receipt, checkpoint and proof still
verifies, and reads return the event with ``pruned=True`` and ``data=None``.

Rules, all documented in docs/operations.md:

- An event matching several policies is kept for the longest of them; an event matching none
  is kept for ever. No policy may be shorter than the floor (default ``183d``, six months: the
  EU AI Act's minimum for logs of high-risk systems); a floor raised later also lengthens the
  policies shorter than it.
- Held events (``eventstore.holds``) are never pruned. Neither are the records of the log's own
  governance (``is_governance``: ``SYSTEM_TYPES`` in the streams their operations write: retention,
  holds, credentials, erasures, restores, archives; the same type name elsewhere is not exempt).
- Policies and the floor live in tables (``retention_policies``, ``retention_settings``) so that
  prune reads them in one query; every change also appends an event to stream ``retention`` in
  the same transaction, so the log holds the whole history of who set what, when.
- Prune works in bounded batches, each its own short transaction, so that appends wait at
  most one batch; its progress commits with each batch (``retention_runs``), so a prune killed
  midway leaves a valid store and is recorded (``retention.pruned`` with ``interrupted``) by
  the next prune that runs once the dead one's heartbeat is ``stale_after`` seconds old.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from . import holds as _holds
from .backends import sql
from .clock import utc_now
from .errors import RetentionFloorError, UserError
from .records import NewEvent

if TYPE_CHECKING:
    from .store import EventStore

RETENTION_STREAM = "retention"
"""The stream of ``retention.policy_set``, ``retention.policy_removed``, ``retention.floor_set``
and ``retention.pruned``."""
DEFAULT_FLOOR = "183d"
"""Six months (the EU AI Act asks deployers of high-risk systems to keep logs at least that long)."""
SYSTEM_TYPES = ("retention.", "hold.", "credential.", "subject.erased", "store.", "archive.")
"""Prefixes of event types never pruned in their own streams: the log's record of its own governance."""
_GOVERNANCE_STREAMS = (
    ("retention.", RETENTION_STREAM),
    ("hold.", "holds"),  # eventstore.holds.HOLDS_STREAM
    ("credential.", "credentials"),  # eventstore.service.credentials.CREDENTIALS_STREAM
    ("subject.erased", "erasure-"),  # eventstore.store.erasure_stream: a prefix
    ("store.", "maintenance"),  # eventstore.backup.MAINTENANCE_STREAM
    ("archive.", "archives"),  # eventstore.audit.archive.ARCHIVES_STREAM
)

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """``0s``, ``90m``, ``12h``, ``30d``, ``2w`` -> seconds (zero allowed: keep nothing)."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if not m:
        raise UserError(f"bad duration {text!r}: use a whole number and a unit s, m, h, d or w (e.g. 30d, 12h, 0s)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: int) -> str:
    """Seconds in the largest unit that divides them exactly (``15811200`` -> ``183d``)."""
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """One retention policy: events of ``kind`` (``streams`` glob or event ``type``) kept ``keep``."""

    kind: str
    pattern: str
    keep: str
    keep_seconds: int
    set_at: str
    set_by: str

    @property
    def label(self) -> str:
        """``streams:agent-*`` or ``type:tool.finished``: how reports and events name the policy."""
        return f"{self.kind}:{self.pattern}"

    def matches(self, stream_id: str, type_: str) -> bool:
        return fnmatch.fnmatchcase(stream_id, self.pattern) if self.kind == "streams" else type_ == self.pattern


class PruneReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``prune`` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    count: int
    """Payloads removed (or that would be)."""
    from_position: int | None
    to_position: int | None
    """The lowest and highest position whose payload was removed."""
    policies: dict[str, int]
    """Payloads removed per policy label (``through:N`` for ``through``)."""
    held: int
    """Events past their policy kept because a legal hold covers them."""
    scanned: int
    batches: int
    seconds: float
    floor: str
    through: int | None = None
    reason: str | None = None
    event_position: int | None = None
    """Position of the ``retention.pruned`` event recording this prune (None if nothing was removed)."""
    recovered: int = 0
    """Interrupted earlier prunes recorded now (``retention.pruned`` with ``interrupted``)."""


# -- policies and the floor ---------------------------------------------------------------


def floor_seconds(store: EventStore) -> int:
    """The minimum retention (seconds): the stored floor, else ``DEFAULT_FLOOR``."""
    rows = store.backend.query(sql.RETENTION_SETTING, ("floor_seconds",))
    return int(rows[0][0]) if rows else parse_duration(DEFAULT_FLOOR)


def policies(store: EventStore) -> list[Policy]:
    """The policies in force, by kind and pattern."""
    return [
        Policy(kind=k, pattern=p, keep_seconds=int(s), keep=keep, set_at=at, set_by=by)
        for k, p, s, keep, at, by in store.backend.query(sql.RETENTION_POLICIES)
    ]


def set_policy(store: EventStore, *, streams: str | None = None, type: str | None = None, keep: str, by: str) -> Policy:
    """Set (or replace) the policy of a stream glob or an event type; appends ``retention.policy_set``.

    Refused (``RetentionFloorError``, nothing written) when ``keep`` is shorter than the floor.
    """
    kind, pattern = _holds.selector(streams, type, "type")
    if kind == "type" and is_system_type(pattern):
        raise UserError(
            f"events of type {pattern!r} are the log's record of its own governance, never pruned in "
            f"their streams (types {', '.join(t + '*' if t.endswith('.') else t for t in SYSTEM_TYPES)} are "
            "reserved for it): a policy on them is refused; nothing was changed"
        )
    seconds = parse_duration(keep)
    _holds._check_text(by, "who sets the policy (--by)")
    floor = floor_seconds(store)
    if seconds < floor:
        raise RetentionFloorError(
            f"retention {keep} for {kind} {pattern!r} is shorter than the minimum retention floor "
            f"{format_duration(floor)}; nothing was changed (lower the floor first with "
            "'eventstore retention floor DURATION' if the law allows it)"
        )
    previous = next((p for p in policies(store) if p.kind == kind and p.pattern == pattern), None)
    policy = Policy(kind=kind, pattern=pattern, keep=keep.strip(), keep_seconds=seconds, set_at=utc_now(), set_by=by)
    data: dict[str, Any] = {"kind": kind, "pattern": pattern, "keep": policy.keep, "keep_seconds": seconds, "by": by}
    if previous is not None:
        data["previous_keep"] = previous.keep
    _holds.append_with(
        store,
        RETENTION_STREAM,
        [NewEvent(type="retention.policy_set", data=data)],
        [(sql.RETENTION_POLICY_PUT, (kind, pattern, seconds, policy.keep, policy.set_at, by))],
    )
    return policy


def remove_policy(store: EventStore, *, streams: str | None = None, type: str | None = None, by: str) -> Policy:
    """Remove a policy (its events are then kept for ever); appends ``retention.policy_removed``."""
    kind, pattern = _holds.selector(streams, type, "type")
    _holds._check_text(by, "who removes the policy (--by)")
    previous = next((p for p in policies(store) if p.kind == kind and p.pattern == pattern), None)
    if previous is None:
        raise UserError(f"no retention policy for {kind} {pattern!r} (see 'eventstore retention list')")
    _holds.append_with(
        store,
        RETENTION_STREAM,
        [
            NewEvent(
                type="retention.policy_removed",
                data={"kind": kind, "pattern": pattern, "previous_keep": previous.keep, "by": by},
            )
        ],
        [(sql.RETENTION_POLICY_DELETE, (kind, pattern))],
    )
    return previous


def set_floor(store: EventStore, duration: str, *, by: str) -> int:
    """Change the minimum retention floor; appends ``retention.floor_set``. Returns the new floor (seconds).

    Existing policies shorter than a raised floor stay listed but prune keeps their events
    for the floor (``eventstore retention list`` shows the effective retention).
    """
    seconds = parse_duration(duration)
    _holds._check_text(by, "who sets the floor (--by)")
    previous = floor_seconds(store)
    _holds.append_with(
        store,
        RETENTION_STREAM,
        [
            NewEvent(
                type="retention.floor_set",
                data={
                    "floor": format_duration(seconds),
                    "floor_seconds": seconds,
                    "previous_floor": format_duration(previous),
                    "by": by,
                },
            )
        ],
        [(sql.RETENTION_SETTING_PUT, ("floor_seconds", str(seconds)))],
    )
    return seconds


# -- prune -----------------------------------------------------------------------------------


def _ts(dt: datetime) -> str:
    """The store's clock format (eventstore.clock), so cut-offs compare with ``recorded_at`` as text."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _latest_now() -> datetime:
    """The latest time a prune may measure from: the clock (tests that prune "years later" move it)."""
    return datetime.now(UTC)


def _now_dt(now: datetime | str | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, str):
        try:
            now = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise UserError(f"bad time {now!r}: use ISO 8601, e.g. 2026-01-01T00:00:00Z") from None
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)  # a time without a zone is UTC


def _cutoff(moment: datetime, seconds: int) -> str:
    """``moment - seconds`` in the clock format; "" (nothing is older) before year 1."""
    try:
        return _ts(moment - timedelta(seconds=seconds))
    except OverflowError:
        return ""


def is_system_type(type_: str) -> bool:
    return type_.startswith(SYSTEM_TYPES)


def is_governance(stream_id: str, type_: str) -> bool:
    """Whether an event is the log's own record (never pruned): a governance type in the stream
    its operation writes. The same type elsewhere (an agent naming its event ``hold.x``) is an
    ordinary event, so that a type name cannot exempt data from retention."""
    for prefix, stream in _GOVERNANCE_STREAMS:
        if type_.startswith(prefix):
            return stream_id.startswith(stream) if stream.endswith("-") else stream_id == stream
    return False


def prune(
    store: EventStore,
    *,
    now: datetime | str | None = None,
    dry_run: bool = False,
    through: int | None = None,
    since: int = 1,
    reason: str | None = None,
    by: str = "library",
    batch_size: int = 5000,
    stale_after: float = 60.0,
) -> PruneReport:
    """Remove the payloads of events past their retention policy; append ``retention.pruned``.

    ``now``: the time policies are measured from (default: the clock). ``through``: also remove
    the payloads at positions <= ``through`` whatever the policies and the floor say (what
    ``prune --archived`` passes once an archive holding those payloads was verified), from
    position ``since`` on (an archive's first position), with ``reason`` saying why. Holds and ``SYSTEM_TYPES`` are honoured either way. ``dry_run``:
    count only, write nothing. ``batch_size``: payloads per transaction (appends wait at most
    one batch). Returns a ``PruneReport``; the event is appended only when something was removed.
    """
    started = time.perf_counter()
    if batch_size < 1:
        raise UserError("batch_size must be at least 1")
    if through is not None and (not isinstance(through, int) or isinstance(through, bool) or through < 0):
        raise UserError(f"through must be a position >= 0, not {through!r}")
    _holds._check_text(by, "who prunes (--by)")
    backend = store.backend
    recovered = 0 if dry_run else _record_interrupted(store, stale_after)
    moment = _now_dt(now)
    if not dry_run and moment > _latest_now():
        raise UserError(
            f"--now {_ts(moment)} is later than the clock: measured from a later time, policies would "
            "remove payloads still inside their retention (and the floor); a prune measures from now "
            "or an earlier time. --dry-run previews a later one; nothing was changed"
        )
    floor = floor_seconds(store)
    rules = [(p, _cutoff(moment, max(p.keep_seconds, floor)), max(p.keep_seconds, floor)) for p in policies(store)]
    head = store.head()[0]
    bound = head if rules else min(head, through or 0)
    through_label = "" if through is None else f"through:{through}"
    # (stream, type) -> (cut-off, label, prunable through ``through``): the cut-off of the longest
    # policy matching (the oldest); "" when none matches, or for SYSTEM_TYPES (no recorded_at
    # sorts before "").
    verdicts: dict[tuple[str, str], tuple[str, str, bool]] = {}

    def verdict(stream_id: str, type_: str) -> tuple[str, str, bool]:
        best: tuple[str, str, int] | None = None
        system = is_governance(stream_id, type_)
        for p, cutoff, keep in () if system else rules:
            if p.matches(stream_id, type_) and (best is None or keep > best[2]):
                best = (cutoff, p.label, keep)
        v = ("", "", not system) if best is None else (best[0], best[1], True)
        if len(verdicts) < 200_000:
            verdicts[(stream_id, type_)] = v
        return v

    run_id = "run-" + secrets.token_hex(6)
    if not dry_run and bound > 0:
        with backend.transaction() as tx:
            tx.execute(sql.RETENTION_RUN_START, (run_id, utc_now(), time.time(), by, reason, through))
    matcher = _holds.HoldMatcher(backend.query(sql.HOLDS_ACTIVE))
    count = held = scanned = batches = 0
    lo: int | None = None
    hi: int | None = None
    per_policy: dict[str, int] = {}
    pending: list[tuple[int, int, str, Any, bytes | None]] = []  # (seq, position, stream, label, data)

    def flush() -> None:
        nonlocal count, held, batches, lo, hi, matcher
        if not pending:
            return
        if dry_run:
            chosen = pending
        else:
            with backend.transaction() as tx:
                # Holds placed since the scan began are honoured: read them in this batch's transaction.
                matcher = _holds.HoldMatcher(tx.execute(sql.HOLDS_ACTIVE))
                # A subject hold placed meanwhile: reload the payloads of rows scanned without them.
                if matcher.needs_data and any(c[4] is None for c in pending):
                    payloads = dict(tx.execute(sql.PAYLOADS_BETWEEN, (pending[0][1], pending[-1][1])))
                    pending[:] = [(q, p, s, lb, payloads.get(p)) for q, p, s, lb, _ in pending]
                chosen = [c for c in pending if not matcher or matcher.held_by(c[2], c[4]) is None]
                held += len(pending) - len(chosen)
                if chosen:
                    # Consecutive candidates form one range: rows between them have no payload already.
                    runs: list[list[int]] = []
                    last_seq = -2
                    for c in chosen:
                        if c[0] == last_seq + 1:
                            runs[-1][1] = c[1]
                        else:
                            runs.append([c[1], c[1]])
                        last_seq = c[0]
                    tx.executemany(sql.PRUNE_PAYLOADS_BETWEEN, runs)
                    tally = dict(per_policy)
                    for c in chosen:
                        tally[c[3]] = tally.get(c[3], 0) + 1
                    tx.execute(
                        sql.RETENTION_RUN_PROGRESS,
                        (
                            time.time(),
                            count + len(chosen),
                            chosen[0][1] if lo is None else lo,
                            chosen[-1][1],
                            msgspec.json.encode(tally).decode(),
                            run_id,
                        ),
                    )
        for c in chosen:
            per_policy[c[3]] = per_policy.get(c[3], 0) + 1
        if chosen:
            count += len(chosen)
            lo = chosen[0][1] if lo is None else lo
            hi = chosen[-1][1]
        batches += 1
        pending.clear()

    position = 0
    seq = 0  # candidates seen: consecutive numbers mean no payload-bearing row between them
    page = max(batch_size, 1000)
    through_pos = -1 if through is None else through
    while position < bound:
        with_data = matcher.needs_data
        rows = backend.query(
            sql.PRUNE_CANDIDATES_WITH_DATA if with_data else sql.PRUNE_CANDIDATES, (position, bound, page)
        )
        if not rows:
            break
        scanned += len(rows)
        position = rows[-1][0]
        any_hold = bool(matcher)
        get = verdicts.get
        first_seq = seq + 1
        for seq, row in enumerate(rows, first_seq):  # the hot loop: one dict lookup per row
            v = get((row[1], row[2])) or verdict(row[1], row[2])
            if row[3] < v[0]:
                label = v[1]
            elif v[2] and since <= row[0] <= through_pos:
                label = through_label
            else:
                continue
            data = row[4] if with_data else None
            if any_hold and matcher.held_by(row[1], data) is not None:
                held += 1
                continue
            pending.append((seq, row[0], row[1], label, data))
            if len(pending) >= batch_size:
                flush()
    flush()
    event_position = None
    if not dry_run and bound > 0:
        done = [(sql.RETENTION_RUN_DONE, (run_id,))]
        if count:
            receipt = _holds.append_with(
                store,
                RETENTION_STREAM,
                [
                    NewEvent(
                        type="retention.pruned",
                        data=_pruned_data(count, lo, hi, per_policy, by, reason, through, held, _ts(moment)),
                    )
                ],
                done,
            )
            event_position = receipt.position
        else:
            with backend.transaction() as tx:
                tx.execute(*done[0])
        if count:
            store.purge_residue(0.5)  # removed payloads leave the WAL too (SQLite)
    return PruneReport(
        dry_run=dry_run,
        count=count,
        from_position=lo,
        to_position=hi,
        policies=per_policy,
        held=held,
        scanned=scanned,
        batches=batches,
        seconds=time.perf_counter() - started,
        floor=format_duration(floor),
        through=through,
        reason=reason,
        event_position=event_position,
        recovered=recovered,
    )


def _pruned_data(
    count: int,
    lo: int | None,
    hi: int | None,
    per_policy: dict[str, int],
    by: str,
    reason: str | None,
    through: int | None,
    held: int,
    now: str | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "from_position": lo,
        "to_position": hi,
        "count": count,
        "policies": per_policy,
        "by": by,
        "held": held,
    }
    if now is not None:
        data["now"] = now
    if reason is not None:
        data["reason"] = reason
    if through is not None:
        data["through"] = through
    if interrupted:
        data["interrupted"] = True
    return data


def _record_interrupted(store: EventStore, stale_after: float) -> int:
    """Append ``retention.pruned`` (``interrupted``) for prunes that died midway; return how many."""
    n = 0
    for run_id, by, reason, through, count, lo, hi, pols in store.backend.query(
        sql.RETENTION_RUNS_STALE, (time.time() - stale_after,)
    ):
        done = (sql.RETENTION_RUN_DONE, (run_id,))
        if count:
            data = _pruned_data(int(count), lo, hi, msgspec.json.decode(pols), by, reason, through, 0, interrupted=True)
            _holds.append_with(store, RETENTION_STREAM, [NewEvent(type="retention.pruned", data=data)], [done])
            n += 1
        else:
            with store.backend.transaction() as tx:
                tx.execute(*done)
    return n
