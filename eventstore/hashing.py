"""The entry hash scheme, version 1 (docs/format.md, "Entry hash").

    entry_hash = SHA-256(
        b"eventstore:entry:v1" || 0x00
        || u64be(position) || u64be(version)
        || lp(stream_id) || lp(type) || lp(recorded_at)
        || data_digest || metadata_digest || prev_hash)

where ``lp(s)`` is the UTF-8 bytes of ``s`` prefixed by their length as u32be,
``data_digest = SHA-256(stored data bytes)`` and likewise for metadata, and
``prev_hash`` is the previous entry's hash (``GENESIS_HASH`` for position 1).

Committing to payload digests rather than payload bytes is what lets a payload be
erased later while every hash, receipt and proof stays valid.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from typing import Any

HASH_SCHEME = "eventstore:entry:v1"
ENTRY_DOMAIN = HASH_SCHEME.encode() + b"\x00"
HASH_SCHEME_V2 = "eventstore:entry:v2"
"""Entries that carry an event id (``NewEvent.id``): v1's fields plus ``lp(event_id)`` after the time."""
ENTRY_DOMAIN_V2 = HASH_SCHEME_V2.encode() + b"\x00"
GENESIS_HASH = bytes(32)

_head = struct.Struct(">QQ").pack  # u64be(position) || u64be(version)
_u32 = struct.Struct(">I").pack
_sha256 = hashlib.sha256


def digest(data: bytes) -> bytes:
    """SHA-256 of stored payload bytes."""
    return _sha256(data).digest()


def lp(s: str) -> bytes:
    """``lp(s)``: the UTF-8 bytes of ``s`` prefixed by their length as u32be."""
    b = s.encode()
    return _u32(len(b)) + b


def preimage_from_parts(
    position: int,
    version: int,
    stream_lp: bytes,
    type_lp: bytes,
    recorded_at_lp: bytes,
    data_digest: bytes,
    metadata_digest: bytes,
    prev_hash: bytes,
    event_id_lp: bytes | None = None,
) -> bytes:
    """The hash preimage from its parts, the names already ``lp()``-encoded: the one place the
    layout is written (v1 without an event id, v2 with one). Writers and verifiers encode names
    that repeat once and call ``hash_from_parts``."""
    parts: tuple[bytes, ...] = (ENTRY_DOMAIN, _head(position, version), stream_lp, type_lp, recorded_at_lp)
    if event_id_lp is not None:
        parts = (ENTRY_DOMAIN_V2, *parts[1:], event_id_lp)
    return b"".join((*parts, data_digest, metadata_digest, prev_hash))


def hash_from_parts(
    position: int,
    version: int,
    stream_lp: bytes,
    type_lp: bytes,
    recorded_at_lp: bytes,
    data_digest: bytes,
    metadata_digest: bytes,
    prev_hash: bytes,
    event_id_lp: bytes | None = None,
    _join: Callable[[Iterable[bytes]], bytes] = b"".join,
    _sha: Callable[[bytes], Any] = _sha256,
    _domain: bytes = ENTRY_DOMAIN,
    _domain2: bytes = ENTRY_DOMAIN_V2,
    _pack: Callable[[int, int], bytes] = _head,
) -> bytes:
    """The entry hash from pre-encoded parts: what the append path and ``verify`` call per event.

    The same bytes as ``preimage_from_parts``, joined here rather than by calling it, with
    its helpers bound as defaults: this runs once per event appended or verified, where a
    second call or four global lookups cost more than the hash (tests/test_format_vectors.py
    checks the two agree).
    """
    if event_id_lp is None:
        return _sha(
            _join(
                (
                    _domain,
                    _pack(position, version),
                    stream_lp,
                    type_lp,
                    recorded_at_lp,
                    data_digest,
                    metadata_digest,
                    prev_hash,
                )
            )
        ).digest()
    return _sha(
        _join(
            (
                _domain2,
                _pack(position, version),
                stream_lp,
                type_lp,
                recorded_at_lp,
                event_id_lp,
                data_digest,
                metadata_digest,
                prev_hash,
            )
        )
    ).digest()


def entry_preimage(
    position: int,
    stream_id: str,
    version: int,
    type: str,
    recorded_at: str,
    data_digest: bytes,
    metadata_digest: bytes,
    prev_hash: bytes,
    event_id: str | None = None,
) -> bytes:
    """The exact bytes hashed into an entry hash (exposed for test vectors and auditors)."""
    return preimage_from_parts(
        position,
        version,
        lp(stream_id),
        lp(type),
        lp(recorded_at),
        data_digest,
        metadata_digest,
        prev_hash,
        None if event_id is None else lp(event_id),
    )


def entry_hash(
    position: int,
    stream_id: str,
    version: int,
    type: str,
    recorded_at: str,
    data_digest: bytes,
    metadata_digest: bytes,
    prev_hash: bytes,
    event_id: str | None = None,
) -> bytes:
    """The 32-byte hash of one log entry (v2 when it carries an event id)."""
    return _sha256(
        entry_preimage(
            position, stream_id, version, type, recorded_at, data_digest, metadata_digest, prev_hash, event_id
        )
    ).digest()
