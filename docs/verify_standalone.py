#!/usr/bin/env python3
"""An independent verifier of an eventstore SQLite log, written from docs/format.md alone.

It uses only the Python standard library and shares no code with eventstore.

    python3 verify_standalone.py audit.db      # exit 0: intact; 1: the first problem is printed
"""

import hashlib
import sqlite3
import struct
import sys

DOMAIN = b"eventstore:entry:v1\x00"
DOMAIN_V2 = b"eventstore:entry:v2\x00"  # entries with an event id


def entry_hash(position, stream_id, version, type_, recorded_at, data_digest, metadata_digest, prev_hash, event_id):
    def lp(text):
        raw = text.encode("utf-8")
        return struct.pack(">I", len(raw)) + raw

    return hashlib.sha256(
        (DOMAIN if event_id is None else DOMAIN_V2)
        + struct.pack(">QQ", position, version)
        + lp(stream_id)
        + lp(type_)
        + lp(recorded_at)
        + (b"" if event_id is None else lp(event_id))
        + data_digest
        + metadata_digest
        + prev_hash
    ).digest()


def verify(path):
    """Return (checked, None) if intact, else (checked, "position N: why")."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    columns = [c[1] for c in conn.execute("PRAGMA table_info(events)")]
    event_id = "event_id" if "event_id" in columns else "NULL"  # logs from before event ids
    rows = conn.execute(
        "SELECT position, stream_id, version, type, data, metadata, data_digest, metadata_digest, "
        f"recorded_at, prev_hash, hash, {event_id} FROM events ORDER BY position"
    )
    expected, prev, versions, checked = 1, bytes(32), {}, 0
    for (
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
        stored,
        event_id,
    ) in rows:
        if position != expected:
            return checked, f"position {expected}: missing (next row is {position})"
        if data is not None and hashlib.sha256(data).digest() != data_digest:
            return checked, f"position {position}: data does not match data_digest"
        if metadata is not None and hashlib.sha256(metadata).digest() != metadata_digest:
            return checked, f"position {position}: metadata does not match metadata_digest"
        if prev_hash != prev:
            return checked, f"position {position}: prev_hash is not the previous entry's hash"
        if (
            entry_hash(
                position, stream_id, version, type_, recorded_at, data_digest, metadata_digest, prev_hash, event_id
            )
            != stored
        ):
            return checked, f"position {position}: hash does not match the entry's columns"
        if version != versions.get(stream_id, 0) + 1:
            return checked, f"position {position}: stream {stream_id!r} jumps to version {version}"
        versions[stream_id] = version
        prev, expected, checked = stored, position + 1, checked + 1
    return checked, None


def main(argv):
    if len(argv) != 2:
        print("usage: verify_standalone.py DATABASE", file=sys.stderr)
        return 2
    checked, problem = verify(argv[1])
    if problem:
        print(f"FAILED after {checked} good entries: {problem}")
        return 1
    print(f"OK: {checked} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
