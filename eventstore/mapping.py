"""The event mapper: events in (validated, encoded, encrypted) and stored rows out (decoded).

As ``eventsourcing``'s ``Mapper`` is given to its ``EventStore``, an ``EventMapper`` is given a
``Catalogue`` (the vocabulary: a Struct per validated type, personal fields, schema versions
and upcasters) and the subject ``KeyStore``. The log core (store, commit, backends) knows
nothing of any vocabulary; the agent vocabulary of docs/events.md is ``catalogue.AGENTS``,
the default. Invariants:

* what ``prepare`` accepts can be stored and read back (names as both databases accept
  them, canonical JSON, bounded depth, no client-made ``$personal`` envelopes);
* ``to_recorded`` never raises on stored bytes (see its docstring).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from . import codec, shredding, upcasting
from .errors import EventTooLarge, InvalidEvent
from .hashing import digest, lp
from .records import NewEvent, RecordedEvent, Row

MAX_NAME_BYTES = 512
"""Longest stream id, event type or subject id, in UTF-8 bytes."""
DEFAULT_MAX_EVENT_BYTES = 1 << 20


class Catalogue:
    """A vocabulary: Structs that validate event types on append, personal fields per type,
    and the schema versions and upcasters of each type (docs/events.md)."""

    def __init__(
        self,
        schemas: Mapping[str, type[msgspec.Struct]] | None = None,
        personal: Mapping[str, Sequence[str]] | None = None,
        registry: upcasting.Registry | None = None,
    ):
        self.schemas: dict[str, type[msgspec.Struct]] = dict(schemas or {})
        self.personal: dict[str, tuple[str, ...]] = {t: tuple(f) for t, f in (personal or {}).items()}
        self.registry = upcasting.Registry() if registry is None else registry
        for type_, schema in self.schemas.items():
            self.registry.set_version(type_, getattr(schema, "schema_version", 1))

    def validate(self, type: str, data: dict[str, Any]) -> None:
        """Check ``data`` against the Struct for ``type`` (if any); InvalidEvent names the path."""
        schema = self.schemas.get(type)
        if schema is None:
            return
        try:
            msgspec.convert(data, schema)
        except msgspec.ValidationError as e:
            msg = str(e).replace("`$", "`$.data")
            if "`$.data" not in msg:
                msg += " - at `$.data`"
            raise InvalidEvent(f"invalid {type!r} event: {msg}") from None

    def parse(self, type: str, data: dict[str, Any]) -> msgspec.Struct | None:
        """Decode a stored event of a known type into its Struct (None for other types)."""
        schema = self.schemas.get(type)
        return None if schema is None else msgspec.convert(data, schema)

    def upcaster(self, type: str, from_version: int) -> Callable[[upcasting.Upcaster], upcasting.Upcaster]:
        """Decorator: register an upcaster of ``type`` from ``from_version`` in this catalogue."""
        return self.registry.register(type, from_version)


def check_name(value: Any, what: str) -> str:
    """Refuse, before any transaction, every name a database would refuse, alike on both backends.

    A NUL fails SQLite's ``length() > 0`` CHECK (its length stops at the NUL) or is
    refused by PostgreSQL text; a lone surrogate cannot be encoded as UTF-8. Either,
    found inside a shared group commit, would fail other callers' appends.
    """
    if not isinstance(value, str):
        raise InvalidEvent(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidEvent(f"{what} must not be empty")
    if value.isascii():  # the common case: one C scan, no encoding
        size = len(value)
    else:
        try:
            size = len(value.encode())
        except UnicodeEncodeError as e:
            raise InvalidEvent(
                f"{what} is not valid Unicode (character {e.start} is a lone surrogate "
                f"{value[e.start]!a}); use UTF-8 text"
            ) from None
    if size > MAX_NAME_BYTES:
        raise InvalidEvent(f"{what} is longer than {MAX_NAME_BYTES} bytes")
    if "\x00" in value:
        raise InvalidEvent(f"{what} must not contain a NUL character (at index {value.index(chr(0))})")
    return value


def check_expected(expected: Any) -> None:
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool) or expected < 0):
        raise InvalidEvent(f"expected_version must be None or an integer >= 0, not {expected!r}")


class Prepared:
    """An event validated and encoded, with the parts of its entry hash that do not depend on position."""

    __slots__ = ("type", "type_lp", "data", "metadata", "data_digest", "metadata_digest", "id", "id_lp")

    def __init__(
        self,
        type: str,
        type_lp: bytes,
        data: bytes,
        metadata: bytes,
        data_digest: bytes,
        metadata_digest: bytes,
        id: str | None = None,
    ):
        self.id = id
        self.id_lp = None if id is None else lp(id)  # lp(event_id) of a v2 hash preimage
        self.type = type
        self.type_lp = type_lp  # lp(type) of the hash preimage (hashing.entry_preimage)
        self.data = data
        self.metadata = metadata
        self.data_digest = data_digest
        self.metadata_digest = metadata_digest


_TYPE_LP: dict[str, bytes] = {}
"""lp(type) of event types that passed check_name: a few types recur in every append, so
prepare() checks and encodes each once. Bounded, like any cache fed by callers."""
_TYPE_LP_MAX = 10_000
_EMPTY_OBJECT_DIGEST = digest(b"{}")  # the metadata of most events


def to_recorded(
    row: Row, keys: shredding.KeyStore | CachedKeys | None = None, registry: upcasting.Registry | None = None
) -> RecordedEvent:
    """Decode a stored row: decrypt personal fields (if ``keys``), then upcast.

    Never raises on stored bytes: whatever cannot be decoded (payload that is not
    JSON or is nested too deep, a personal field that cannot be decrypted, a failing
    upcaster) is described in ``RecordedEvent.unreadable`` and left undecoded
    (None, or data at its stored schema version), so one bad event cannot stop a reader.
    ``registry``: the upcasters to apply (default: the process-wide registry).
    """
    problems: list[str] | None = None  # built only for an unreadable event: reads of intact ones stay fast
    raw = row.data
    try:
        data = codec.decode(raw)
    except (msgspec.DecodeError, RecursionError) as e:
        data = None
        problems = [f"$.data cannot be decoded: {e}"]
    try:
        metadata = codec.decode(row.metadata)
    except (msgspec.DecodeError, RecursionError) as e:
        metadata = None
        problems = (problems or []) + [f"$.metadata cannot be decoded: {e}"]
    erased: list[str] = []
    if type(data) is dict:
        if keys is not None and _ENVELOPE_MARK in raw:  # type: ignore[operator]
            data, erased, bad = shredding.decrypt_fields(data, row.type, keys.keys(shredding.subjects_in(data)))
            if bad:
                problems = (problems or []) + bad
    elif data is not None:
        problems = (problems or []) + [f"$.data is a {type(data).__name__}, not an object"]
    version = 1
    registry = upcasting.REGISTRY if registry is None else registry
    if registry.evolved:  # only when some type has evolved
        version = upcasting.stored_version(metadata)
        if type(data) is dict and version < registry.version_of(row.type):
            try:
                data, version = registry.upcast(row.type, version, data)
            except upcasting.UpcastError as e:
                problems = (problems or []) + [str(e)]
    return RecordedEvent(
        position=row.position,
        stream_id=row.stream_id,
        version=row.version,
        type=row.type,
        data=data,
        metadata=metadata,
        recorded_at=row.recorded_at,
        hash=row.hash.hex(),
        prev_hash=row.prev_hash.hex(),
        schema_version=version,
        erased=erased,
        unreadable=None if problems is None else "; ".join(problems),
        id=row.event_id,
        pruned=raw is None,
    )


class CachedKeys:
    """A KeyStore front that remembers the keys it looked up (bounded), for whole-log scans."""

    MAX = 100_000

    def __init__(self, keys: shredding.KeyStore):
        self._keys = keys
        self._known: dict[str, bytes | None] = {}
        self._asked: set[str] = set()

    def keys(self, subjects: set[str]) -> dict[str, bytes | None]:
        missing = subjects - self._asked
        if missing:
            if len(self._asked) > self.MAX:
                self._known.clear()
                self._asked.clear()
                missing = subjects
            self._known.update(self._keys.keys(missing))
            self._asked |= missing
        return {s: self._known[s] for s in subjects if s in self._known}


_ENVELOPE_MARK = b'"' + shredding.ENVELOPE.encode() + b'"'


class EventMapper:
    """Turns ``NewEvent``s into ``Prepared`` rows-to-be and stored rows into ``RecordedEvent``s."""

    def __init__(self, catalogue: Catalogue, keys: shredding.KeyStore, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES):
        self.catalogue = catalogue
        self.keys = keys
        self.max_event_bytes = max_event_bytes
        self.decode: Callable[[Row], RecordedEvent] = functools.partial(
            to_recorded, keys=keys, registry=catalogue.registry
        )
        """``to_recorded`` with this mapper's keys and upcasters (a C-level partial: reads call it per row)."""

    def prepare(self, events: Sequence[NewEvent]) -> list[Prepared]:
        """Validate and encode events (outside any lock); raises InvalidEvent."""
        if isinstance(events, NewEvent):
            raise InvalidEvent("append takes a list of NewEvent, not a single NewEvent")
        if not isinstance(events, (list, tuple)) or not events:
            raise InvalidEvent("append needs a non-empty list of NewEvent")
        out: list[Prepared] = []
        limit = self.max_event_bytes
        encode_object, validate, version_of = (
            codec.encode_object,
            self.catalogue.validate,
            self.catalogue.registry.version_of,
        )
        sha256, type_lps = hashlib.sha256, _TYPE_LP
        # Events of one append often carry equal metadata: hash those bytes once.
        last_metadata, last_metadata_digest = b"{}", _EMPTY_OBJECT_DIGEST
        ids: set[str] | None = None
        for i, ev in enumerate(events):
            if not isinstance(ev, NewEvent):
                raise InvalidEvent(f"event {i} is a {type(ev).__name__}, not a NewEvent")
            type_ = ev.type
            type_lp = type_lps.get(type_) if type(type_) is str else None
            if type_lp is None:
                type_ = check_name(type_, f"event {i}: type")
                type_lp = lp(type_)
                if type(type_) is str and len(type_lps) < _TYPE_LP_MAX:
                    type_lps[type_] = type_lp
            data, plain = encode_object(ev.data, "$.data")
            validate(type_, plain)
            if ev.subject is not None or ev.personal:
                data = self._encrypt_personal(ev, type_, plain)
            metadata, meta = encode_object(ev.metadata, "$.metadata")
            current = version_of(type_)
            if current > 1 and upcasting.SCHEMA_VERSION_KEY not in meta:
                metadata = codec.encode({**meta, upcasting.SCHEMA_VERSION_KEY: current})
            size = len(data) + len(metadata)
            if size > limit:
                raise EventTooLarge(f"event {i} ({type_!r}) is {size} bytes encoded; the limit is {limit} bytes")
            if metadata != last_metadata:
                last_metadata, last_metadata_digest = metadata, sha256(metadata).digest()
            event_id = ev.id
            if event_id is not None:
                check_name(event_id, f"event {i}: id")
                if ids is None:
                    ids = set()
                if event_id in ids:
                    raise InvalidEvent(f"event {i}: id {event_id!r} appears twice in one append")
                ids.add(event_id)
            out.append(Prepared(type_, type_lp, data, metadata, sha256(data).digest(), last_metadata_digest, event_id))
        if ids is not None and len(ids) != len(out):
            raise InvalidEvent(
                "either every event of one append carries an id, or none does: a retry must be "
                'recognisable as a whole (docs/format.md, "Event ids and idempotent appends")'
            )
        return out

    def personal_fields(self, ev: NewEvent, type_: str, plain: dict[str, Any]) -> list[str]:
        """The personal fields of ``ev`` to encrypt under its subject; refuses a subject with none.

        Writes nothing (no key is created), so a caller can check an event before it is queued."""
        fields = ev.personal if ev.personal is not None else self.catalogue.personal.get(type_, ())
        if ev.subject is None:
            raise InvalidEvent(f"personal fields {list(fields)} need a subject (NewEvent.subject)")
        check_name(ev.subject, "subject")
        for f in fields:
            if not isinstance(f, str) or not f:
                raise InvalidEvent(f"personal field names must be non-empty strings, not {f!r}")
        present = [f for f in fields if plain.get(f) is not None]
        if not present:
            # The subject is recorded only in its fields' envelopes: kept here, it would be stored
            # nowhere, and a subject hold or erasure would silently miss the event.
            raise InvalidEvent(
                f"subject {ev.subject!r} is given, but the event has no personal field to hold it "
                f"(type {type_!r} declares {list(fields) or 'none'}; NewEvent.personal names others): "
                "leave the subject out, or name the personal fields",
                path="$.subject",
            )
        return present

    def _encrypt_personal(self, ev: NewEvent, type_: str, plain: dict[str, Any]) -> bytes:
        """Encrypt the event's personal fields under its subject's key (crypto-shredding)."""
        present = self.personal_fields(ev, type_, plain)
        assert ev.subject is not None
        key = self.keys.key_for_writing(ev.subject)
        return codec.encode(shredding.encrypt_fields(plain, type_, ev.subject, present, key))
