"""docs/format.md is right: its test vectors match the code, and its standalone verifier works."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from eventstore import EventStore, NewEvent, codec, hashing

DOCS = Path(__file__).resolve().parent.parent / "docs"


def vectors() -> list[dict[str, str]]:
    text = (DOCS / "format.md").read_text()
    blocks = re.findall(r"```vector\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    return [dict(line.split(": ", 1) for line in b.strip().splitlines()) for b in blocks]


def test_vectors_match_the_code_and_an_independent_hash() -> None:
    prev = bytes(32)
    for v in vectors():
        data, _ = codec.encode_object(json.loads(v["data_in"]), "$.data")
        meta, _ = codec.encode_object(json.loads(v["metadata_in"]), "$.metadata")
        assert data.hex() == v["data_hex"] and meta.hex() == v["metadata_hex"]
        assert hashlib.sha256(data).hexdigest() == v["data_digest"]
        assert hashlib.sha256(meta).hexdigest() == v["metadata_digest"]
        assert v["prev_hash"] == prev.hex()  # the vectors form one chain
        args = (
            int(v["position"]),
            v["stream_id"],
            int(v["version"]),
            v["type"],
            v["recorded_at"],
            bytes.fromhex(v["data_digest"]),
            bytes.fromhex(v["metadata_digest"]),
            prev,
            v.get("event_id"),
        )
        assert hashing.entry_preimage(*args).hex() == v["preimage_hex"]
        assert hashing.entry_hash(*args).hex() == v["hash"]
        parts = [hashing.lp(x) for x in (args[1], args[3], args[4])]
        event_id_lp = None if args[8] is None else hashing.lp(args[8])
        assert hashing.hash_from_parts(pos := args[0], args[2], *parts, *args[5:8], event_id_lp).hex() == v["hash"]
        del pos
        # the preimage as the doc describes it, byte by byte
        pos, stream, ver, typ, rec = args[:5]

        def lp(s: str) -> bytes:
            return struct.pack(">I", len(s.encode())) + s.encode()

        event_id = v.get("event_id")
        mine = (
            (b"eventstore:entry:v1\x00" if event_id is None else b"eventstore:entry:v2\x00")
            + struct.pack(">QQ", pos, ver)
            + lp(stream)
            + lp(typ)
            + lp(rec)
            + (b"" if event_id is None else lp(event_id))
            + args[5]
            + args[6]
            + prev
        )
        assert mine.hex() == v["preimage_hex"]
        prev = bytes.fromhex(v["hash"])


def _store(path: Path) -> None:
    with EventStore.open(path) as store:
        for i in range(12):
            event = NewEvent(
                type="t", data={"i": i, "text": "grüße"}, metadata={"m": i % 2}, id=f"e{i}" if i % 2 else None
            )
            store.append(f"s{i % 3}", [event])


def _run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DOCS / "verify_standalone.py"), str(path)], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("sql", "position"),
    [
        ("UPDATE events SET data = CAST('{\"i\":99}' AS BLOB) WHERE position = 5", 5),
        ("UPDATE events SET recorded_at = '2000-01-01T00:00:00.000000Z' WHERE position = 7", 7),
        ("DELETE FROM events WHERE position = 4", 4),
        ("UPDATE events SET stream_id = 'other' WHERE position = 9", 9),
        ("UPDATE events SET event_id = 'e99' WHERE position = 10", 10),  # an entry with an id (v2)
        ("UPDATE events SET event_id = 'e98' WHERE position = 11", 11),  # an id given to a v1 entry
    ],
)
def test_standalone_verifier_accepts_a_real_log_and_names_the_tampered_position(
    tmp_path: Path, sql: str, position: int
) -> None:
    path = tmp_path / "a.db"
    _store(path)
    ok = _run(path)
    assert ok.returncode == 0 and "OK: 12 entries" in ok.stdout
    bad = tmp_path / "b.db"
    shutil.copy(path, bad)
    conn = sqlite3.connect(bad)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()
    r = _run(bad)
    assert r.returncode == 1 and f"position {position}" in r.stdout
