#!/usr/bin/env python3
"""An independent verifier of an eventstore SQLite log, written from docs/format.md alone,
and of an archive, written from docs/archive.md and docs/audit.md.

It uses only the Python standard library and shares no code with eventstore.

    python3 verify_standalone.py audit.db      # exit 0: intact; 1: the first problem is printed
    python3 verify_standalone.py --archive events.jsonl.gz verifier.pub
"""

import base64
import hashlib
import json
import sqlite3
import struct
import sys
import zlib

DOMAIN = b"eventstore:entry:v1\x00"
DOMAIN_V2 = b"eventstore:entry:v2\x00"  # entries with an event id
ARCHIVE_V1 = "eventstore-archive/v1"
ARCHIVE_V2 = "eventstore-archive/v2"  # adds the header's "pruned"


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


# -- archives (docs/archive.md) ------------------------------------------------------------

# Ed25519 verification, RFC 8032 section 6 (the reference code; slow, and fine for one signature).
_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(a, b):
    x = (a[1] - a[0]) * (b[1] - b[0]) % _P
    y = (a[1] + a[0]) * (b[1] + b[0]) % _P
    c, d = 2 * a[3] * b[3] * _D % _P, 2 * a[2] * b[2] % _P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f, g * h, f * g, e * h)


def _mul(s, point):
    out = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            out = _add(out, point)
        point = _add(point, point)
        s >>= 1
    return out


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 % _P == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    return _P - x if (x & 1) != sign else x


def _decompress(raw):
    y = int.from_bytes(raw, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_G = (_recover_x(_GY, 0), _GY, 1, _recover_x(_GY, 0) * _GY % _P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decompress(public), _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _Q:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _Q
    left, right = _mul(s, _G), _add(r, _mul(h, a))
    return (left[0] * right[2] - right[0] * left[2]) % _P == 0 and (left[1] * right[2] - right[1] * left[2]) % _P == 0


def open_checkpoint(note, key_text):
    """(origin, size, root) of a signed checkpoint, or raise ValueError (docs/audit.md)."""
    name, key_id_hex, key_b64 = key_text.strip().split("+", 2)  # base64 may hold "+"
    raw_key = base64.b64decode(key_b64, validate=True)
    if raw_key[0] != 1 or len(raw_key) != 33:
        raise ValueError("not an Ed25519 log key")
    key_id = hashlib.sha256(name.encode() + b"\n" + raw_key).digest()[:4]
    if key_id.hex() != key_id_hex:
        raise ValueError("the key's id does not match the key")
    sep = note.rfind("\n\n")
    text, block = note[: sep + 1], note[sep + 2 :]
    signed = False
    for line in block.splitlines():
        _dash, who, sig = line.split(" ")
        sig = base64.b64decode(sig, validate=True)
        if who == name and sig[:4] == key_id and ed25519_verify(raw_key[1:], text.encode(), sig[4:]):
            signed = True
    if not signed:
        raise ValueError(f"the checkpoint carries no valid signature by {name}")
    origin, size, root = text.split("\n")[:3]
    if origin != name:
        raise ValueError(f"the checkpoint is of log {origin!r}, the key is {name!r}")
    return origin, int(size), base64.b64decode(root, validate=True)


def _node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(m, n, old_root, new_root, proof):
    """RFC 9162 2.1.4.2: is the tree of m leaves with old_root a prefix of the one of n with new_root?"""
    if m == n:
        return not proof and old_root == new_root
    if m < 1 or m > n or not proof:
        return False
    path = ([old_root] if m & (m - 1) == 0 else []) + list(proof)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


MAX_LINE = 1 << 28  # a reader refuses longer lines: a crafted gzip member must not take the memory


class Cut(Exception):
    """The archive's gzip data ends early, is damaged, or is followed by other bytes."""


def archive_lines(f):
    """Yield the decompressed lines (without their newline) as the file is read, so that every
    line before a cut is still checked and the cut is named at the first line not wholly there."""
    z = zlib.decompressobj(31)  # exactly one gzip member (RFC 1952)
    pending = b""
    while not z.eof:
        chunk = f.read(65536)
        if not chunk:
            raise Cut("truncated: the file ends before it is wholly present")
        try:
            data = pending + z.decompress(chunk)
        except zlib.error as e:
            raise Cut(f"damaged gzip data ({e})") from None
        *lines, pending = data.split(b"\n")
        if len(pending) > MAX_LINE or any(len(line) > MAX_LINE for line in lines):
            raise Cut(f"a line longer than {MAX_LINE} bytes decompressed (docs/archive.md, Container)")
        yield from lines
    if pending:
        raise Cut("truncated: the last line does not end in a newline")
    if z.unused_data or f.read(1):
        raise Cut("bytes follow the gzip member")


def verify_archive(path, key_text):
    """Return (checked, None, absent) if the archive is intact, else (checked, "position N: why", absent);
    absent: the positions checked whose payload the archive does not hold (it may be their only copy)."""
    lines = archive_lines(open(path, "rb"))
    position, checked, absent = 0, 0, []  # position: of the line being read (0: the header)
    try:
        header = json.loads(next(lines, b"null"))
        if not isinstance(header, dict) or header.get("format") not in (ARCHIVE_V1, ARCHIVE_V2):
            return 0, f"position 0: not an {ARCHIVE_V1} or {ARCHIVE_V2} header", absent
        first, through = header["from_position"], header["through"]
        pruned = header.get("pruned")  # v2: [first, last] ranges of positions pruned before archiving
        if (pruned is None) != (header["format"] == ARCHIVE_V1):
            return 0, "position 0: a v2 header has a pruned list, a v1 header has none", absent
        listed, last = set(), first - 2
        for a, b in pruned or ():
            if not last + 1 < a <= b <= through:  # ascending, apart, within the segment
                return 0, f"position 0: the pruned range [{a}, {b}] is out of place", absent
            listed.update(range(a, b + 1))
            last = b
        try:
            _origin, size, root = open_checkpoint(header["checkpoint"], key_text)
        except (ValueError, IndexError) as e:
            return 0, f"position 0: signature: {e}", absent
        if size < through:
            return 0, f"position {through}: the checkpoint (size {size}) does not cover the archive", absent
        frontier = [bytes.fromhex(h) for h in header["left"]]
        if len(frontier) != bin(first - 1).count("1"):
            return 0, "position 0: wrong number of left hashes", absent
        position, prev, versions = first, bytes.fromhex(header["prev_hash"]), {}
        for line in lines:
            e = json.loads(line)
            if e["position"] != position or position > through:
                return (
                    checked,
                    f"position {position}: found entry {e['position']} (missing, reordered or extra)",
                    absent,
                )
            if e["data"] is None:
                if pruned is not None and position not in listed:
                    return checked, f"position {position}: the payload was removed after archiving", absent
                data_digest = bytes.fromhex(e["data_digest"])
            elif position in listed:
                return checked, f"position {position}: listed as pruned, yet its payload is here", absent
            else:
                data_digest = hashlib.sha256(e["data"].encode()).digest()
            metadata_digest = hashlib.sha256(e["metadata"].encode()).digest()
            h = entry_hash(
                position,
                e["stream_id"],
                e["version"],
                e["type"],
                e["recorded_at"],
                data_digest,
                metadata_digest,
                prev,
                e.get("event_id"),
            )
            if h.hex() != e["hash"]:
                return checked, f"position {position}: hash does not match the entry's fields", absent
            last = versions.get(e["stream_id"], 0 if first == 1 else e["version"] - 1)
            if e["version"] != last + 1:
                return (
                    checked,
                    f"position {position}: stream {e['stream_id']!r} jumps to version {e['version']}",
                    absent,
                )
            versions[e["stream_id"]] = e["version"]
            leaf = hashlib.sha256(b"\x00" + h).digest()  # append to the compact range
            n = position - 1
            while n & 1:
                leaf = _node(frontier.pop(), leaf)
                n >>= 1
            frontier.append(leaf)
            if e["data"] is None:
                absent.append(position)
            prev, position, checked = h, position + 1, checked + 1
    except Cut as e:
        return checked, f"position {position}: {e}", absent
    if position <= through:
        return checked, f"position {position}: missing (the archive was truncated)", absent
    segment_root = frontier[-1]
    for left in reversed(frontier[:-1]):
        segment_root = _node(left, segment_root)
    if not consistent(through, size, segment_root, root, [bytes.fromhex(h) for h in header["right"]]):
        return checked, f"position {first}: the entries do not lead to the checkpoint's root", absent
    return checked, None, absent


def main(argv):
    absent = []
    if len(argv) == 4 and argv[1] == "--archive":
        checked, problem, absent = verify_archive(argv[2], open(argv[3], encoding="utf-8").read())
    elif len(argv) == 2:
        checked, problem = verify(argv[1])
    else:
        print("usage: verify_standalone.py DATABASE | --archive FILE VERIFIER_KEY", file=sys.stderr)
        return 2
    if problem:
        print(f"FAILED after {checked} good entries: {problem}")
        return 1
    print(f"OK: {checked} entries")
    if absent:  # the archive may be these payloads' only copy
        print(
            f"payloads absent: {len(absent)} (positions {', '.join(map(str, absent[:10]))}{', ...' if len(absent) > 10 else ''})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
