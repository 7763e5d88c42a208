"""Structs for every record that crosses a boundary: events in, events out, receipts, reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import msgspec


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append. ``data`` and ``metadata`` are JSON objects (dicts or Structs).

    ``subject`` names the person whose data the event holds; with it, the personal
    fields (``personal``, else the catalogue's list for the type) are encrypted
    under that subject's key so they can be erased later (docs/events.md).
    """

    type: str
    data: Any = msgspec.field(default_factory=dict)
    metadata: Any = msgspec.field(default_factory=dict)
    subject: str | None = None
    personal: tuple[str, ...] | None = None
    id: str | None = None
    """The event's identity in its stream (a UUID, say): appending an event whose id the stream
    already holds writes nothing and returns the original receipt, so a retry counts once.
    Covered by the entry hash (docs/format.md, "Entry hash")."""


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored in the log, with its payloads decoded.

    ``data`` is upcast to the type's current ``schema_version``. Personal fields
    whose subject was erased read as ``None`` and are listed in ``erased``.

    ``unreadable`` is None for every event the store wrote and nobody altered.
    Otherwise it says why (part of) the payload could not be decoded: payload
    or metadata that is not JSON (then ``None``), a personal field that cannot be
    decrypted although it was not erased (unknown subject, ciphertext that does
    not authenticate: the field reads as ``None`` and is *not* in ``erased``), or
    an upcaster that failed (``data`` stays at ``schema_version``, its stored
    version). Reads never raise on such an event; projections record it as a
    failure at its position (docs/events.md, "Unreadable events").
    """

    position: int
    stream_id: str
    version: int
    type: str
    data: Any
    metadata: Any
    recorded_at: str
    hash: str
    prev_hash: str
    schema_version: int = 1
    erased: list[str] = msgspec.field(default_factory=list)
    unreadable: str | None = None
    id: str | None = None
    """The event id it was appended with (``NewEvent.id``), if any."""
    pruned: bool = False
    """The payload was removed by retention (``eventstore prune``): ``data`` is None; the digests,
    metadata and every hash stay, so the entry still verifies (docs/format.md, "Pruned payloads")."""


def agent_of(metadata: Any) -> str | None:
    """Who wrote an event, from its metadata: the writing credential's ``principal`` (the service
    sets it; a client cannot), else the agent's own ``agent_id``; None for neither."""
    if type(metadata) is not dict:
        return None
    agent = metadata.get("principal") or metadata.get("agent_id")
    return agent if type(agent) is str and agent else None


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """Proof of a durable append: what the appender keeps and can check later.

    Hashes are lowercase hex. See docs/format.md, "Receipts".
    """

    position: int
    stream_id: str
    version: int
    hash: str
    prev_hash: str
    recorded_at: str


ProblemKind = Literal[
    "gap",
    "data_digest",
    "metadata_digest",
    "link",
    "hash",
    "version",
    "type",
    "unreadable",  # the chain
    "missing",
    "receipt",  # a receipt
    "signature",
    "origin",
    "rollback",
    "fork",
    "truncated",  # a checkpoint and an auditor's state
]
"""What a verification found wrong (docs/cli.md, "Errors and verdicts")."""


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """The first thing found wrong by a verification."""

    position: int
    kind: ProblemKind
    message: str


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of ``EventStore.verify``: ``ok`` only if every checked entry is intact."""

    ok: bool
    checked: int
    from_position: int
    to_position: int
    head_position: int
    head_hash: str | None
    problem: Problem | None = None


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """Summary figures of a store (``eventstore stats``)."""

    url: str
    events: int
    streams: int
    types: dict[str, int]
    head_position: int
    head_hash: str | None
    size_bytes: int | None
    schema_version: int


class Row(NamedTuple):
    """One stored row of the ``events`` table, column for column (internal)."""

    position: int
    stream_id: str
    version: int
    type: str
    data: bytes | None
    metadata: bytes | None
    data_digest: bytes
    metadata_digest: bytes
    recorded_at: str
    prev_hash: bytes
    hash: bytes
    event_id: str | None = None


COLUMNS = Row._fields


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file of migrations/<dialect>/ (eventstore.migrate parses them)."""

    version: int
    name: str
    checksum: str
    up: str
    down: str
    destructive: bool
    down_destructive: bool


@dataclass(frozen=True)
class AppliedMigration:
    """A row of ``schema_migrations``: what a backend says it applied."""

    version: int
    name: str
    checksum: str
    applied_at: str
