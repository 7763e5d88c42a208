"""Archives (docs/archive.md): written atomically, verified offline, refused when tampered with."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import types
import zlib
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

from eventstore import EventStore, NewEvent, retention
from eventstore.audit import archive as archives
from eventstore.audit import notes
from eventstore.cli import main
from eventstore.errors import UserError, VerificationError
from eventstore.hashing import entry_hash

SIGNER = notes.Signer("test.example/log", notes.ALG_ED25519, bytes(range(32)))
OTHER = notes.Signer("test.example/log", notes.ALG_ED25519, bytes(range(1, 33)))


def fill(store: EventStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.append(f"s{i % 3}", [NewEvent(type="t", data={"i": i, "text": "ünï"}, metadata={"agent": "a"})])


def null_payload(db: Path, *positions: int) -> None:
    """Remove payloads as prune does (data NULL, digest kept), bypassing its checks."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    conn.executemany("UPDATE events SET data = NULL WHERE position = ?", [(p,) for p in positions])
    conn.commit()
    conn.close()


def strip_payload(path: Path, position: int) -> None:
    """Replace an archived entry's payload by its digest: the form a pruned entry takes."""
    lines = lines_of(path)
    i = position - json.loads(lines[0])["from_position"] + 1
    data = json.loads(lines[i])["data"]
    edit_entry(path, position, data=None, data_digest=hashlib.sha256(data.encode()).hexdigest())


def edit_header(path: Path, **changes: object) -> None:
    lines = lines_of(path)
    header = json.loads(lines[0])
    header.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del header[key]
    rewrite(path, [json.dumps(header).encode() + b"\n", *lines[1:]])


def lines_of(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(gzip.compress(b"".join(lines)))


def edit_entry(path: Path, position: int, **changes: object) -> None:
    """Change fields of the entry line for ``position`` (the header is line 0)."""
    lines = lines_of(path)
    header = json.loads(lines[0])
    i = position - header["from_position"] + 1
    entry = json.loads(lines[i])
    entry.update(changes)
    lines[i] = json.dumps(entry).encode() + b"\n"
    rewrite(path, lines)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An archive of positions 3..12 of a 20-entry log, anchored to a checkpoint of size 20."""
    db = tmp_path / "a.db"
    with EventStore.open(str(db)) as store:
        fill(store, 20)
        store.checkpoint(SIGNER)
        archives.write_archive(store, tmp_path / "a.jsonl.gz", 12, from_position=3, by="tester")
    pub = tmp_path / "verifier.pub"
    pub.write_text(SIGNER.verifier.to_text() + "\n")
    return db, tmp_path / "a.jsonl.gz", pub


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def verify_cli(path: Path, pub: Path) -> Result:
    return cli("verify-archive", str(path), "--public-key", str(pub))


# -- writing and reading back -------------------------------------------------------------


@pytest.mark.parametrize(("first", "through"), [(1, 1), (1, 16), (1, 20), (5, 17), (17, 20), (20, 20)])
def test_archive_verifies_and_reads_back_like_the_log(
    store: EventStore, tmp_path: Path, first: int, through: int
) -> None:
    fill(store, 20)
    store.checkpoint(SIGNER)
    fill(store, 5, start=20)  # entries after the checkpoint are not needed
    path = tmp_path / f"{first}-{through}.gz"
    info = archives.write_archive(store, path, through, from_position=first, by="tester")
    assert (info.from_position, info.through, info.entries, info.tree_size) == (first, through, through - first + 1, 20)
    report = archives.verify_archive(path, SIGNER.verifier)
    assert report.ok, report.problem
    assert report.checked == through - first + 1
    assert list(archives.read_archive(path)) == list(store.read_all(first, to_position=through))
    assert archives.archived_through(store) == through
    created = list(store.read_stream(archives.ARCHIVES_STREAM))[-1]
    assert created.type == "archive.created" and created.data["sha256"] == info.sha256
    assert created.data["by"] == "tester" and created.data["root"] == info.root
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256
    assert store.verify().ok


def test_archived_through_is_the_highest_range_recorded(sqlite_store: EventStore, tmp_path: Path) -> None:
    assert archives.archived_through(sqlite_store) is None
    fill(sqlite_store, 10)
    archives.write_archive(sqlite_store, tmp_path / "b.gz", 8, signer=SIGNER)
    archives.write_archive(sqlite_store, tmp_path / "a.gz", 4, signer=SIGNER)
    assert archives.archived_through(sqlite_store) == 8


def test_a_checkpoint_is_signed_only_when_none_covers_the_range(sqlite_store: EventStore, tmp_path: Path) -> None:
    fill(sqlite_store, 10)
    with pytest.raises(UserError, match="no stored checkpoint covers position 10; give --key"):
        archives.write_archive(sqlite_store, tmp_path / "x.gz", 10)
    assert not (tmp_path / "x.gz").exists() and archives.archived_through(sqlite_store) is None
    archives.write_archive(sqlite_store, tmp_path / "x.gz", 10, signer=SIGNER)
    assert [c[1] for c in sqlite_store.checkpoints()] == [10]
    archives.write_archive(sqlite_store, tmp_path / "y.gz", 7, signer=SIGNER)  # the stored one covers it
    assert [c[1] for c in sqlite_store.checkpoints()] == [10]
    assert archives.verify_archive(tmp_path / "y.gz", SIGNER.verifier).ok


def test_bad_requests_are_refused_and_write_nothing(sqlite_store: EventStore, tmp_path: Path) -> None:
    fill(sqlite_store, 5)
    sqlite_store.checkpoint(SIGNER)
    for kwargs, message in (
        ({"through": 6}, "--through 6 is beyond the log's head"),
        ({"through": 3, "from_position": 4}, "--from 4 must be between 1 and --through 3"),
    ):
        with pytest.raises(UserError, match=message):
            archives.write_archive(sqlite_store, tmp_path / "x.gz", **kwargs)  # type: ignore[arg-type]
    (tmp_path / "old.gz").write_bytes(b"keep me")
    with pytest.raises(UserError, match="exists; refusing to overwrite"):
        archives.write_archive(sqlite_store, tmp_path / "old.gz", 5)
    assert (tmp_path / "old.gz").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if "gz" in p.name) == ["old.gz"]
    assert archives.archived_through(sqlite_store) is None
    archives.write_archive(sqlite_store, tmp_path / "old.gz", 5, replace=True)
    assert archives.verify_archive(tmp_path / "old.gz", SIGNER.verifier).ok


def test_a_tampered_log_is_not_archived(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with EventStore.open(str(db)) as store:
        fill(store, 10)
        store.checkpoint(SIGNER)
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET data = CAST('{\"i\":99}' AS BLOB) WHERE position = 6")
    conn.commit()
    conn.close()
    with EventStore.open(str(db)) as store:
        with pytest.raises(VerificationError, match="does not verify at position 6 \\(data_digest\\)"):
            archives.write_archive(store, tmp_path / "x.gz", 10)
    assert not list(tmp_path.glob("*x.gz*"))


def test_a_removed_payload_is_archived_as_its_digest(tmp_path: Path) -> None:
    """A row whose data bytes were removed (NULL, as prune does) keeps its digest: the archive verifies."""
    db = tmp_path / "a.db"
    with EventStore.open(str(db)) as store:
        fill(store, 6)
        store.checkpoint(SIGNER)
    null_payload(db, 2)
    with EventStore.open(str(db)) as store:
        archives.write_archive(store, tmp_path / "x.gz", 6)
    assert archives.verify_archive(tmp_path / "x.gz", SIGNER.verifier).ok
    entry = json.loads(lines_of(tmp_path / "x.gz")[2])
    assert entry["data"] is None and len(entry["data_digest"]) == 64
    events = list(archives.read_archive(tmp_path / "x.gz"))
    assert events[1].data is None and events[1].pruned  # as the live log reads it
    assert events[2].data == {"i": 2, "text": "ünï"} and not events[2].pruned


def test_personal_fields_stay_encrypted_in_an_archive(sqlite_store: EventStore, tmp_path: Path) -> None:
    sqlite_store.append(
        "agent-1",
        [
            NewEvent(
                type="message.appended",
                data={"session_id": "s", "message_id": "m", "role": "user", "content": "secret"},
                subject="alice",
            )
        ],
    )
    archives.write_archive(sqlite_store, tmp_path / "x.gz", 1, signer=SIGNER)
    assert b"secret" not in gzip.decompress((tmp_path / "x.gz").read_bytes())
    (ev,) = archives.read_archive(tmp_path / "x.gz")
    assert "$personal" in ev.data["content"]
    sqlite_store.erase("alice", requested_by="dpo")
    assert archives.verify_archive(tmp_path / "x.gz", SIGNER.verifier).ok  # erasure keeps every hash


# -- the command line ---------------------------------------------------------------------


def test_cli_archive_verify_and_read(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    with EventStore.open(db) as store:
        fill(store, 12)
    assert cli("keygen", "--name", "test.example/log", "--out", str(tmp_path / "k")).exit_code == 0
    out = tmp_path / "seg.jsonl.gz"
    r = cli(
        "--db",
        db,
        "archive",
        "--to",
        str(out),
        "--through",
        "10",
        "--from",
        "2",
        "--key",
        str(tmp_path / "k"),
        "--json",
    )
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert (info["from_position"], info["through"], info["entries"], info["event_position"]) == (2, 10, 9, 13)
    r = verify_cli(out, tmp_path / "k" / "verifier.pub")
    assert r.exit_code == 0 and r.stdout.startswith("OK: archive intact: 9 entries checked, positions 2..10"), r.output
    r = cli("verify-archive", str(out), "--public-key", str(tmp_path / "k" / "verifier.pub"), "--json")
    assert json.loads(r.stdout)["ok"] is True
    live = cli("--db", db, "read", "--from", "3", "--limit", "4")
    archived = cli("--db", str(tmp_path / "none.db"), "read", "--archive", str(out), "--from", "3", "--limit", "4")
    assert archived.exit_code == 0 and archived.stdout == live.stdout and archived.stdout.count("\n") == 4
    live = cli("--db", db, "read", "--stream", "s1", "--from", "2")
    archived = cli("read", "--archive", str(out), "--stream", "s1", "--from", "2")
    assert archived.stdout == "".join(
        line + "\n" for line in live.stdout.splitlines() if 2 <= json.loads(line)["position"] <= 10
    )
    assert not (tmp_path / "none.db").exists()
    r = cli("--db", db, "archive", "--to", str(out), "--through", "10")
    assert r.exit_code == 2 and "exists; refusing to overwrite" in r.stderr


# -- tampering: each refused, naming the first bad entry ----------------------------------


def test_intact_archive_verifies(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    r = verify_cli(path, pub)
    assert r.exit_code == 0, r.output


def test_truncated_file_is_refused(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 40])
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and "(truncated)" in r.stdout and "it was truncated" in r.stdout, r.output


def test_archive_cut_at_a_line_boundary_names_the_first_missing_position(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    rewrite(path, lines_of(path)[:-3])  # positions 10..12 dropped, recompressed cleanly
    r = verify_cli(path, pub)
    assert r.exit_code == 1
    assert r.stdout.startswith("FAILED at position 10 (truncated): the archive ends before position 10"), r.output


def test_edited_payload_is_refused(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    edit_entry(path, 7, data='{"i":600,"text":"ünï"}')
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 7 (hash)"), r.output


def test_edited_metadata_is_refused(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    edit_entry(path, 4, metadata='{"agent":"b"}')
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 4 (hash)"), r.output


def test_edited_hash_is_refused(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    edit_entry(path, 9, hash="ab" * 32)
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 9 (hash)"), r.output


def test_reordered_entries_are_refused(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    lines = lines_of(path)
    lines[3], lines[4] = lines[4], lines[3]  # positions 5 and 6
    rewrite(path, lines)
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 5 (gap)"), r.output


def test_entries_rewritten_with_recomputed_hashes_do_not_lead_to_the_root(written: tuple[Path, Path, Path]) -> None:
    """A forger who rehashes the whole chain after an edit passes the chain checks, not the proof."""
    _, path, pub = written
    lines = lines_of(path)
    header = json.loads(lines[0])
    prev = bytes.fromhex(header["prev_hash"])
    out = [lines[0]]
    for line in lines[1:]:
        e = json.loads(line)
        if e["position"] == 8:
            e["data"] = '{"i":8,"text":"forged"}'
        h = entry_hash(
            e["position"],
            e["stream_id"],
            e["version"],
            e["type"],
            e["recorded_at"],
            hashlib.sha256(e["data"].encode()).digest(),
            hashlib.sha256(e["metadata"].encode()).digest(),
            prev,
        )
        e["hash"] = h.hex()
        prev = h
        out.append(json.dumps(e).encode() + b"\n")
    rewrite(path, out)
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 3 (fork): entries 3..12 do not lead"), r.output


def test_wrong_key_is_refused(written: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, path, _ = written
    other = tmp_path / "other.pub"
    other.write_text(OTHER.verifier.to_text())
    r = verify_cli(path, other)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 0 (signature)"), r.output


def test_swapped_checkpoint_is_refused(written: tuple[Path, Path, Path]) -> None:
    """Another genuine checkpoint of the same log (a later size) does not fit the header's proof."""
    db, path, pub = written
    with EventStore.open(str(db)) as store:
        fill(store, 3, start=100)
        later = store.checkpoint(SIGNER).format()
    lines = lines_of(path)
    header = json.loads(lines[0])
    header["checkpoint"] = later
    rewrite(path, [json.dumps(header).encode() + b"\n", *lines[1:]])
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 3 (fork)"), r.output
    # a genuine checkpoint (of another log under the same key) too small to cover the archive
    with EventStore.open(str(path.parent / "c.db")) as other:
        fill(other, 5)
        tiny = other.checkpoint(SIGNER).format()
    header["checkpoint"] = tiny
    rewrite(path, [json.dumps(header).encode() + b"\n", *lines[1:]])
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and "(truncated): the archive's checkpoint (size 5) does not cover position 12" in r.stdout


def test_edited_proof_hash_is_refused(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    lines = lines_of(path)
    header = json.loads(lines[0])
    header["right"][0] = "00" * 32
    rewrite(path, [json.dumps(header).encode() + b"\n", *lines[1:]])
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 3 (fork)"), r.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not an archive\n", "is not a gzip-compressed eventstore archive"),
        (gzip.compress(b"not json\n"), "has no eventstore archive header"),
        (gzip.compress(b'{"format":"other"}\n'), "has no eventstore archive header"),
        (b"", "is empty"),
    ],
)
def test_garbage_is_refused(written: tuple[Path, Path, Path], content: bytes, message: str) -> None:
    _, path, pub = written
    path.write_bytes(content)
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 0 (unreadable)") and message in r.stdout
    r = cli("read", "--archive", str(path))
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output


def test_garbage_entry_line_and_extra_entries_are_refused(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    lines = lines_of(path)
    rewrite(path, [*lines[:5], b'{"position": 7}\n', *lines[6:]])
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 7 (unreadable)"), r.output
    rewrite(path, [*lines, lines[-1]])
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and "entries after position 12" in r.stdout


def test_read_refuses_a_tampered_archive(written: tuple[Path, Path, Path]) -> None:
    _, path, _ = written
    edit_entry(path, 7, data='{"i":600}')
    r = cli("read", "--archive", str(path))
    assert r.exit_code == 2 and "position 7 (hash)" in r.stderr
    assert r.stdout.count("\n") == 0  # nothing of the tampered batch is printed


def test_missing_file_and_key_are_usage_errors(written: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, path, pub = written
    r = verify_cli(tmp_path / "nope.gz", pub)
    assert r.exit_code == 2 and "cannot read archive" in r.stderr
    r = verify_cli(path, tmp_path / "nope.pub")
    assert r.exit_code == 2 and "cannot read public key" in r.stderr


def test_reports_are_json(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    edit_entry(path, 5, hash="cd" * 32)
    r = cli("verify-archive", str(path), "--public-key", str(pub), "--json")
    report = msgspec.json.decode(r.stdout, type=archives.ArchiveReport)
    assert r.exit_code == 1 and not report.ok and report.problem is not None
    assert (report.problem.position, report.problem.kind, report.checked) == (5, "hash", 2)


# -- payloads absent: pruned before archiving, or stripped since --------------------------


@pytest.fixture
def pruned(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An archive of positions 1..18 of a 20-entry log whose payloads 2..15 were pruned first."""
    db = tmp_path / "p.db"
    with EventStore.open(str(db)) as store:
        fill(store, 20)
        retention.prune(store, through=15, since=2, reason="old", by="ops")
        store.checkpoint(SIGNER)
        info = archives.write_archive(store, tmp_path / "p.jsonl.gz", 18)
    assert info.payloads_absent == 14
    pub = tmp_path / "verifier.pub"
    pub.write_text(SIGNER.verifier.to_text() + "\n")
    return db, tmp_path / "p.jsonl.gz", pub


def test_payloads_pruned_before_archiving_are_listed_accepted_and_counted(pruned: tuple[Path, Path, Path]) -> None:
    _, path, pub = pruned
    assert json.loads(lines_of(path)[0])["pruned"] == [[2, 15]]
    r = verify_cli(path, pub)
    assert r.exit_code == 0, r.output
    assert "payloads absent: 14 (positions 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...): each pruned before archiving" in (
        r.stdout
    )
    report = json.loads(cli("verify-archive", str(path), "--public-key", str(pub), "--json").stdout)
    assert (report["ok"], report["payloads_absent"], report["payloads_absent_at"]) == (True, 14, list(range(2, 12)))
    assert [e.position for e in archives.read_archive(path) if e.pruned] == list(range(2, 16))


def test_an_intact_archive_without_pruned_payloads_says_nothing_of_them(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    assert json.loads(lines_of(path)[0])["pruned"] == []
    r = verify_cli(path, pub)
    assert r.exit_code == 0 and "payloads absent" not in r.stdout
    assert (
        json.loads(cli("verify-archive", str(path), "--public-key", str(pub), "--json").stdout)["payloads_absent"] == 0
    )


def test_a_payload_stripped_after_archiving_is_refused_at_its_position(pruned: tuple[Path, Path, Path]) -> None:
    """After prune --archived the archive is the payload's only copy: losing it must not pass."""
    _, path, pub = pruned
    strip_payload(path, 17)
    strip_payload(path, 16)
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 16 (missing): the payload of position 16"), (
        r.output
    )
    r = cli("read", "--archive", str(path))
    assert r.exit_code == 2 and "position 16 (missing)" in r.stderr
    checked, problem, _ = standalone().verify_archive(path, pub.read_text())
    assert (checked, problem) == (15, "position 16: the payload was removed after archiving")


def test_a_header_listing_a_present_payload_as_pruned_is_refused(pruned: tuple[Path, Path, Path]) -> None:
    _, path, pub = pruned
    edit_header(path, pruned=[[2, 15], [17, 17]])
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 17 (unreadable): the header lists"), r.output


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pruned": None}, "has no pruned list"),
        ({"pruned": [[2, 15], [16, 16]]}, "pruned range [16, 16] is not within 1..18, ascending"),
        ({"pruned": [[2, 15], [10, 16]]}, "pruned range [10, 16]"),
        ({"pruned": [[2, 19]]}, "pruned range [2, 19]"),
        ({"pruned": [[5, 2]]}, "pruned range [5, 2]"),
        ({"format": "eventstore-archive/v1"}, "an eventstore-archive/v1 header has no pruned list"),
    ],
)
def test_a_malformed_pruned_list_is_refused(
    pruned: tuple[Path, Path, Path], changes: dict[str, object], message: str
) -> None:
    _, path, pub = pruned
    edit_header(path, **changes)
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 0 (unreadable)") and message in r.stdout, (
        r.output
    )


def test_a_v1_archive_still_verifies_and_reports_the_payloads_it_lacks(pruned: tuple[Path, Path, Path]) -> None:
    """A v1 header (no pruned list) cannot tell pruned from stripped: both are reported, not refused."""
    _, path, pub = pruned
    edit_header(path, format="eventstore-archive/v1", pruned=None)
    strip_payload(path, 17)
    r = verify_cli(path, pub)
    assert r.exit_code == 0, r.output
    assert "payloads absent: 15 (positions 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...): an eventstore-archive/v1" in r.stdout
    report = archives.verify_archive(path, SIGNER.verifier)
    assert (report.format, report.payloads_absent) == ("eventstore-archive/v1", 15)
    assert standalone().verify_archive(path, pub.read_text()) == (18, None, [*range(2, 16), 17])


def test_a_stripped_payload_with_an_edited_header_passes_but_is_counted_and_the_hash_tells(
    pruned: tuple[Path, Path, Path],
) -> None:
    """docs/archive.md, "pruned is not authenticated offline": the file's recorded SHA-256 binds it."""
    db, path, _ = pruned
    strip_payload(path, 17)
    edit_header(path, pruned=[[2, 15], [17, 17]])
    report = archives.verify_archive(path, SIGNER.verifier)
    assert report.ok and report.payloads_absent == 15
    with EventStore.open(str(db)) as store:
        with pytest.raises(UserError, match="not an archive this log recorded"):
            archives.prune_archived(store, path, SIGNER.verifier)


def test_a_payload_pruned_while_archiving_stops_the_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruned after the header listed the pruned positions: the header would be wrong, so nothing is written."""
    db = tmp_path / "a.db"
    with EventStore.open(str(db)) as store:
        fill(store, 6)
        store.checkpoint(SIGNER)
    null_payload(db, 5)
    monkeypatch.setattr(archives, "_pruned_ranges", lambda *_: [])  # the listing, taken just before
    with EventStore.open(str(db)) as store:
        with pytest.raises(UserError, match="payload of position 5 was pruned while it was being archived"):
            archives.write_archive(store, tmp_path / "x.gz", 6)
        assert archives.archived_through(store) is None
    assert not list(tmp_path.glob("*x.gz*"))


# -- truncation: named at the first entry not wholly present ------------------------------


def first_not_whole(raw: bytes, cut: int, from_position: int) -> int:
    """The position of the first line not wholly in ``raw[:cut]`` once decompressed (0: the header)."""
    whole = zlib.decompressobj(31).decompress(raw[:cut]).count(b"\n")
    return 0 if whole == 0 else from_position + whole - 1


def first_cut_with_header(raw: bytes) -> int:
    """The shortest prefix of ``raw`` that holds the whole header line."""
    return next(cut for cut in range(len(raw)) if first_not_whole(raw, cut, 1) > 0)


def test_every_truncation_names_the_first_entry_not_wholly_present(written: tuple[Path, Path, Path]) -> None:
    _, path, _ = written
    raw = path.read_bytes()
    header_end = first_cut_with_header(raw)
    for cut in range(1, len(raw)):
        path.write_bytes(raw[:cut])
        report = archives.verify_archive(path, SIGNER.verifier)
        p = report.problem
        assert p is not None and p.kind == "truncated", (cut, p)
        assert p.position == first_not_whole(raw, cut, 3), (cut, p)
        assert report.checked == max(0, p.position - 3), (cut, report)  # every whole entry before it was checked
        assert (p.position == 0) == (cut < header_end), (cut, p)


def test_a_large_archive_cut_in_half_names_the_first_missing_entry(tmp_path: Path) -> None:
    """The cut is named where the data ends, not where a read buffer was refilled (64 KiB earlier)."""
    with EventStore.open(str(tmp_path / "a.db")) as store:
        store.append_many([(f"s{i % 7}", [NewEvent(type="t", data={"i": i})], None) for i in range(5000)])
        store.checkpoint(SIGNER)
        archives.write_archive(store, tmp_path / "a.gz", 5000)
    raw = (tmp_path / "a.gz").read_bytes()
    cut = len(raw) // 2
    (tmp_path / "a.gz").write_bytes(raw[:cut])
    expected = first_not_whole(raw, cut, 1)
    assert 1000 < expected < 4000
    report = archives.verify_archive(tmp_path / "a.gz", SIGNER.verifier)
    assert report.problem is not None and (report.problem.position, report.problem.kind) == (expected, "truncated")
    assert report.checked == expected - 1
    pub = tmp_path / "k.pub"
    pub.write_text(SIGNER.verifier.to_text())
    r = verify_cli(tmp_path / "a.gz", pub)
    assert r.stdout.startswith(
        f"FAILED at position {expected} (truncated): the archive ends before the entry at position {expected} "
        "is wholly present"
    ), r.output


def test_a_cut_header_is_position_0_and_a_cut_trailer_is_after_the_last_entry(
    written: tuple[Path, Path, Path],
) -> None:
    _, path, pub = written
    raw = path.read_bytes()
    path.write_bytes(raw[: first_cut_with_header(raw) - 1])
    assert verify_cli(path, pub).stdout.startswith(
        "FAILED at position 0 (truncated): the archive ends inside its header"
    )
    path.write_bytes(raw[:-4])  # the gzip length field
    r = verify_cli(path, pub)
    assert r.stdout.startswith(
        "FAILED at position 13 (truncated): the archive ends inside its gzip trailer, after "
        "its last entry (position 12)"
    ), r.output


def test_an_entry_edited_before_the_cut_is_named_rather_than_the_cut(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    edit_entry(path, 9, metadata='{"agent":"b"}')
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 30])
    r = verify_cli(path, pub)
    assert r.stdout.startswith("FAILED at position 9 (hash)"), r.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (gzip.compress(b"{}\n"), "bytes follow the archive's gzip member"),  # a second member
        (b"\0" * 8, "bytes follow the archive's gzip member"),  # padding
    ],
)
def test_bytes_after_the_gzip_member_are_refused(written: tuple[Path, Path, Path], extra: bytes, message: str) -> None:
    _, path, pub = written
    path.write_bytes(path.read_bytes() + extra)
    r = verify_cli(path, pub)
    assert r.stdout.startswith("FAILED at position 13 (unreadable)") and message in r.stdout, r.output


def test_content_without_a_final_newline_is_truncated(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    content = b"".join(lines_of(path))
    path.write_bytes(gzip.compress(content[:-1]))
    r = verify_cli(path, pub)
    assert r.stdout.startswith("FAILED at position 12 (truncated): the archive's content ends without a newline"), (
        r.output
    )


def standalone() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("verify_standalone", DOCS / "verify_standalone.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_standalone_verifier_names_the_same_truncated_position(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    verifier, key = standalone(), pub.read_text()
    raw = path.read_bytes()
    for cut in [*range(1, len(raw), 97), len(raw) - 4]:
        path.write_bytes(raw[:cut])
        report = archives.verify_archive(path, SIGNER.verifier)
        assert report.problem is not None
        checked, problem, _ = verifier.verify_archive(path, key)
        assert problem.startswith(f"position {report.problem.position}: truncated"), (cut, problem, report)
        assert checked == report.checked


# -- a crash in the middle ----------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_while_archiving_leaves_no_archive_and_can_be_rerun(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with EventStore.open(str(db)) as store:
        store.append_many([(f"s{i % 7}", [NewEvent(type="t", data={"i": i})], None) for i in range(5000)])
        store.checkpoint(SIGNER)
    target = tmp_path / "out" / "seg.gz"
    script = textwrap.dedent(
        f"""
        import sys, time
        from eventstore import EventStore
        from eventstore.audit import archive
        def stall(done, total):
            if done >= 2000:
                print("stalled", flush=True)
                time.sleep(60)
        with EventStore.open({str(db)!r}) as store:
            archive.write_archive(store, {str(target)!r}, 5000, progress=stall)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "stalled"
        temps = list(target.parent.glob(".seg.gz.*.tmp"))
        assert temps and temps[0].stat().st_size > 0  # half an archive exists, under a temporary name
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert not target.exists()
    with EventStore.open(str(db)) as store:
        assert store.verify().ok and archives.archived_through(store) is None
        info = archives.write_archive(store, target, 5000)
    assert info.entries == 5000
    report = archives.verify_archive(target, SIGNER.verifier)
    assert report.ok and report.checked == 5000


def test_the_archive_benchmark_reports_its_figure_beside_a_file_copy(tmp_path: Path) -> None:
    from benchmarks.harness import fill as bench_fill
    from benchmarks.harness import run_archive

    db = str(tmp_path / "b.db")
    bench_fill(db, 300)
    f = run_archive(db, str(tmp_path), repeat=1)
    assert f.case == "archive" and f.baseline.startswith("plain copy") and f.ours > 0 and f.base > 0
    assert isinstance(f.met, bool) and "300 events" in f.note
    assert len(list(archives.read_archive(tmp_path / "bench.archive.gz"))) == 300


# -- docs/archive.md ----------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def doc_vector() -> tuple[str, str]:
    text = (DOCS / "archive.md").read_text()
    (key,) = re.findall(r"```archive-key\n(.*?)\n```", text, re.S)
    (content,) = re.findall(r"```archive\n(.*?)```", text, re.S)
    return key, content


def test_docs_vector_is_what_the_code_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import eventstore.commit

    monkeypatch.setattr(eventstore.commit, "utc_now", lambda: "2026-11-24T10:00:00.000000Z")
    signer = notes.Signer("example.com/archive-vector", notes.ALG_ED25519, bytes(32))
    key, content = doc_vector()
    assert signer.verifier.to_text() == key
    with EventStore.open(str(tmp_path / "v.db")) as store:
        store.append("orders-1", [NewEvent(type="order.placed", data={"order_id": "A-1", "amount": 12.5})])
        store.append(
            "orders-1",
            [
                NewEvent(
                    type="order.paid",
                    data={"order_id": "A-1", "note": 'Grüße "ok"'},
                    metadata={"agent_id": "billing"},
                )
            ],
        )
        store.append(
            "orders-2",
            [
                NewEvent(
                    type="order.placed",
                    data={"order_id": "B-7", "amount": 3},
                    id="0b7e2a1c-5f3d-4e8a-9c61-2f4d8e1a7b90",
                )
            ],
        )
        store.append("orders-1", [NewEvent(type="order.shipped", data={"order_id": "A-1"})])
        store.append("orders-2", [NewEvent(type="order.cancelled", data={"order_id": "B-7"})])
        store.checkpoint(signer)
    null_payload(tmp_path / "v.db", 4)  # pruned before archiving
    with EventStore.open(str(tmp_path / "v.db")) as store:
        archives.write_archive(store, tmp_path / "v.gz", 4, from_position=2)
        live = list(store.read_all(2, to_position=4))
    assert gzip.decompress((tmp_path / "v.gz").read_bytes()).decode() == content
    # the doc's content, gzipped by anyone, is an archive that verifies and reads back
    path = tmp_path / "doc.gz"
    path.write_bytes(gzip.compress(content.encode()))
    report = archives.verify_archive(path, notes.Verifier.from_text(key))
    assert report.ok and report.checked == 3 and report.tree_size == 5
    assert (report.format, report.payloads_absent, report.payloads_absent_at) == (archives.FORMAT, 1, [4])
    assert list(archives.read_archive(path)) == live and live[2].pruned
    # what the doc says of entry 3 stripped of its payload after archiving
    edit_entry(path, 3, data=None, data_digest=hashlib.sha256(b'{"amount":3,"order_id":"B-7"}').hexdigest())
    report = archives.verify_archive(path, notes.Verifier.from_text(key))
    assert report.problem is not None and (report.problem.position, report.problem.kind) == (3, "missing")


def test_standalone_verifier_checks_archives(tmp_path: Path) -> None:
    """docs/verify_standalone.py (stdlib only, written from the docs) agrees with verify-archive."""
    key, content = doc_vector()
    (tmp_path / "k.pub").write_text(key + "\n")
    path = tmp_path / "doc.gz"
    path.write_bytes(gzip.compress(content.encode()))

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(DOCS / "verify_standalone.py"), "--archive", str(path), str(tmp_path / "k.pub")],
            capture_output=True,
            text=True,
        )

    r = run()
    assert r.returncode == 0 and r.stdout.startswith("OK: 3 entries"), r.stdout + r.stderr
    lines = content.splitlines(keepends=True)
    assert "payloads absent: 1 (positions 4)" in r.stdout
    for edit, expected in (
        (lambda ls: [ls[0], ls[1].replace('\\"ok\\\\\\"', '\\"OK\\\\\\"'), *ls[2:]], "position 2"),
        (lambda ls: ls[:-1], "position 4"),
        (lambda ls: [ls[0].replace('"through":4,"pruned":[[4,4]]', '"through":3,"pruned":[]'), *ls[1:-1]], "root"),
        (lambda ls: [ls[0].replace("Pc+J", "Pc+K"), *ls[1:]], "signature"),
        (lambda ls: [ls[0].replace('"pruned":[[4,4]]', '"pruned":[]'), *ls[1:]], "position 4: the payload was removed"),
    ):
        edited = edit(list(lines))
        assert edited != lines
        path.write_bytes(gzip.compress("".join(edited).encode()))
        r = run()
        assert r.returncode == 1 and expected in r.stdout, (expected, r.stdout, r.stderr)


def test_verify_archive_needs_no_database_even_with_a_service_url(written: tuple[Path, Path, Path]) -> None:
    _, path, pub = written
    r = cli("--db", "http://127.0.0.1:9/", "verify-archive", str(path), "--public-key", str(pub))
    assert r.exit_code == 0, r.output
    r = cli("--db", "http://127.0.0.1:9/", "archive", "--to", str(path) + "2", "--through", "1")
    assert r.exit_code == 2 and "needs a database URL" in r.stderr


# -- prune --archived ---------------------------------------------------------------------


def test_prune_archived_drops_exactly_the_archived_payloads_and_every_proof_still_holds(
    written: tuple[Path, Path, Path],
) -> None:
    db, path, pub = written
    with EventStore.open(str(db)) as store:
        before = {e.position: e for e in store.read_all()}
        dry = archives.prune_archived(store, path, SIGNER.verifier, by="ops", dry_run=True)
        assert dry.count == 10 and store.read_all().__next__().pruned is False  # nothing written
        report = archives.prune_archived(store, path, SIGNER.verifier, by="ops")
        assert (report.count, report.from_position, report.to_position) == (10, 3, 12)
        after = {e.position: e for e in store.read_all()}
        assert [p for p, e in after.items() if e.pruned] == list(range(3, 13))
        assert all(after[p].data == before[p].data for p in (1, 2, 13, 20))  # outside the archive: kept
        assert store.verify().ok  # digests stay: the chain, receipts and proofs still verify
        pruned_event = next(e for e in store.read_stream("retention") if e.type == "retention.pruned")
        assert pruned_event.data["through"] == 12 and "a.jsonl.gz" in pruned_event.data["reason"]
    # the archive still holds what the live log no longer does
    assert {e.position: e.data for e in archives.read_archive(path)} == {p: before[p].data for p in range(3, 13)}
    assert archives.verify_archive(path, SIGNER.verifier).ok


def test_prune_archived_refuses_an_archive_that_does_not_check_out(
    written: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    db, path, pub = written
    with EventStore.open(str(db)) as store:
        with pytest.raises(VerificationError, match="does not verify"):
            archives.prune_archived(store, path, OTHER.verifier)  # the wrong key
        edited = tmp_path / "edited.jsonl.gz"
        edited.write_bytes(path.read_bytes())
        edit_entry(edited, 5, data=json.dumps({"i": 999}))
        with pytest.raises(VerificationError):
            archives.prune_archived(store, edited, SIGNER.verifier)
        assert not any(e.pruned for e in store.read_all())
    # an intact archive of another log (same key, another history) is not recorded here
    other_db = tmp_path / "other.db"
    with EventStore.open(str(other_db)) as other:
        fill(other, 20, start=100)
        other.checkpoint(SIGNER)
        archives.write_archive(other, tmp_path / "other.jsonl.gz", 12, from_position=3)
    with EventStore.open(str(db)) as store:
        with pytest.raises(UserError, match="not an archive this log recorded"):
            archives.prune_archived(store, tmp_path / "other.jsonl.gz", SIGNER.verifier)
        assert not any(e.pruned for e in store.read_all())


def test_prune_archived_cli(written: tuple[Path, Path, Path]) -> None:
    db, path, pub = written
    assert cli("--db", str(db), "prune", "--archived", str(path)).exit_code == 2  # needs the key
    result = cli("--db", str(db), "prune", "--archived", str(path), "--public-key", str(pub), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 10
    again = cli("--db", str(db), "prune", "--archived", str(path), "--public-key", str(pub), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["count"] == 0  # run again: nothing left


# -- a crafted file cannot take the verifier's memory ----------------------------------------


def test_an_endless_line_is_refused_at_its_position_without_reading_it_whole(
    written: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gzip bomb (one line that never ends) is refused once the line passes the cap, naming
    the line; a long line inside the cap still reads (it fails later, as an edited entry)."""
    _, path, pub = written
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    monkeypatch.setattr(archives, "MAX_LINE_BYTES", 1 << 20)
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    bomb = z.compress(b"\n".join(lines[:3]) + b"\n")  # the header and positions 3, 4
    for _ in range(64):  # 64 MiB of one line, about 64 KiB on disk
        bomb += z.compress(b"x" * (1 << 20))
    path.write_bytes(bomb + z.flush())
    assert len(path.read_bytes()) < 1 << 20
    report = archives.verify_archive(path, SIGNER.verifier)
    assert report.problem is not None and (report.problem.position, report.problem.kind) == (5, "unreadable")
    assert "longer than 1048576 bytes decompressed" in report.problem.message and report.checked == 2
    r = verify_cli(path, pub)
    assert r.exit_code == 1 and r.stdout.startswith(
        "FAILED at position 5 (unreadable): the line at position 5 is longer"
    )
    # one newline-terminated line over the cap, in the middle of a chunk, is refused the same way
    long_line = lines[:4] + [b"y" * ((1 << 20) + 1)] + lines[5:]
    path.write_bytes(gzip.compress(b"\n".join(long_line)))
    p = archives.verify_archive(path, SIGNER.verifier).problem
    assert p is not None and (p.position, p.kind) == (6, "unreadable")
