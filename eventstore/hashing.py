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

HASH_SCHEME = "eventstore:entry:v1"
ENTRY_DOMAIN = HASH_SCHEME.encode() + b"\x00"
GENESIS_HASH = bytes(32)

_u64 = struct.Struct(">Q").pack
_u32 = struct.Struct(">I").pack
_sha256 = hashlib.sha256


def digest(data: bytes) -> bytes:
    """SHA-256 of stored payload bytes."""
    return _sha256(data).digest()


def entry_preimage(
    position: int,
    stream_id: str,
    version: int,
    type: str,
    recorded_at: str,
    data_digest: bytes,
    metadata_digest: bytes,
    prev_hash: bytes,
) -> bytes:
    """The exact bytes hashed into an entry hash (exposed for test vectors and auditors)."""
    s = stream_id.encode()
    t = type.encode()
    r = recorded_at.encode()
    return b"".join(
        (
            ENTRY_DOMAIN,
            _u64(position),
            _u64(version),
            _u32(len(s)), s,
            _u32(len(t)), t,
            _u32(len(r)), r,
            data_digest,
            metadata_digest,
            prev_hash,
        )
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
) -> bytes:
    """The 32-byte hash of one log entry."""
    return _sha256(
        entry_preimage(
            position, stream_id, version, type, recorded_at, data_digest, metadata_digest, prev_hash
        )
    ).digest()
