"""The auditor's binding checks: what ties a row, a receipt or a proof to exactly one log entry.

Each test here tampers in the one way a single check exists to catch (a link rewritten with
every hash recomputed, a payload edited under an unchanged digest, a proof's entry header
rewritten field by field, a checkpoint naming another log), so disabling that check makes
the test fail. Tampering goes below the library, through the database, with the append-only
triggers out of the way.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent, Receipt, VerificationError, auditor, notes, proofs
from eventstore.cli import main
from eventstore.hashing import digest, entry_hash

ORIGIN = "test.example/log"
OTHER = "other.example/log"


def _fill(store: EventStore, n: int) -> list[Receipt]:
    out: list[Receipt] = []
    for i in range(n):
        out += store.append(f"s{i % 3}", [NewEvent(type="t", data={"i": i}, metadata={"m": i % 2})])
    return out


def _allow_changes(store: EventStore) -> None:
    """Take the append-only triggers away, as an attacker with database access would."""
    with store.backend.transaction() as tx:
        if store.url.startswith("postgres"):
            tx.execute("ALTER TABLE events DISABLE TRIGGER USER")
        else:
            tx.execute("DROP TRIGGER IF EXISTS events_no_update")
            tx.execute("DROP TRIGGER IF EXISTS events_no_delete")


def _set(store: EventStore, position: int, **columns: Any) -> None:
    _allow_changes(store)
    sets = ", ".join(f"{c} = ?" for c in columns)
    with store.backend.transaction() as tx:
        tx.execute(f"UPDATE events SET {sets} WHERE position = ?", (*columns.values(), position))


def _rehashed(store: EventStore, position: int, **columns: Any) -> bytes:
    """Rewrite columns of one row and store the entry hash its new columns give: only the
    checks outside the entry hash (links, payload digests, versions) can see the change."""
    row = store.backend.row_at(position)._replace(**columns)  # type: ignore[union-attr]
    h = entry_hash(
        row.position,
        row.stream_id,
        row.version,
        row.type,
        row.recorded_at,
        row.data_digest,
        row.metadata_digest,
        row.prev_hash,
    )
    _set(store, position, **columns, hash=h)
    return h


def _problem(report: Any) -> tuple[int, str]:
    assert not report.ok and report.problem is not None, report
    return report.problem.position, report.problem.kind


# -- the chain verifier ----------------------------------------------------------------


def test_a_rewritten_link_with_its_hash_recomputed_is_a_link_problem(store: EventStore) -> None:
    """Only the prev_hash link is wrong: every row hashes to its stored hash."""
    _fill(store, 10)
    assert store.verify().ok
    _rehashed(store, 6, prev_hash=bytes(range(32)))
    assert _problem(store.verify()) == (6, "link")
    assert _problem(store.verify(batch_size=4)) == (6, "link")  # across a batch boundary
    assert _problem(store.verify(6, 8)) == (6, "link")  # the range's first link is checked too
    # from 7 on, row 7 still names the old hash of row 6
    assert _problem(store.verify(7)) == (7, "link")
    assert store.verify(1, 5).ok and store.verify(1, 5).checked == 5


def test_a_payload_changed_under_its_digest_fails_verify_and_receipts(store: EventStore) -> None:
    receipts = _fill(store, 8)
    _set(store, 3, data=b'{"i":99}')
    _set(store, 5, metadata=b'{"m":7}')
    assert _problem(store.verify()) == (3, "data_digest")
    assert _problem(store.verify(4)) == (5, "metadata_digest")
    assert _problem(store.verify_receipt(receipts[2])) == (3, "data_digest")
    assert _problem(store.verify_receipt(receipts[4])) == (5, "metadata_digest")
    assert store.verify_receipt(receipts[3]).ok


def test_repeated_metadata_is_still_checked_against_each_rows_digest(store: EventStore) -> None:
    """The verifier skips rehashing metadata equal to the previous row's; the digest must match anyway."""
    for i in range(6):
        store.append("s", [NewEvent(type="t", data={"i": i}, metadata={"same": True})])
    _rehashed(store, 4, metadata_digest=digest(b"something else"))
    assert _problem(store.verify()) == (4, "metadata_digest")


def test_receipt_binds_every_column_of_its_row(store: EventStore) -> None:
    receipts = _fill(store, 9)
    r = receipts[5]
    assert store.verify_receipt(r).ok
    # a row edited with its own hash recomputed: the receipt's hash no longer matches
    _rehashed(store, 6, stream_id="forged")
    assert _problem(store.verify_receipt(r)) == (6, "hash")
    # the stored hash left stale after an edit
    _set(store, 7, recorded_at="2000-01-01T00:00:00.000000Z")
    assert _problem(store.verify_receipt(receipts[6])) == (7, "hash")
    # a receipt whose own fields were altered does not verify
    good = receipts[1]
    for change in (
        {"hash": receipts[2].hash},
        {"prev_hash": "00" * 32},
        {"stream_id": "s9"},
        {"version": good.version + 1},
        {"recorded_at": "2000-01-01T00:00:00.000000Z"},
    ):
        forged = msgspec.structs.replace(good, **change)
        assert not store.verify_receipt(forged).ok, change


def test_receipt_for_a_row_relinked_with_every_hash_recomputed_fails_on_the_link(store: EventStore) -> None:
    """Row 4 is rewritten to link to a made-up predecessor and the receipt forged to match:
    only the check that row 3 links to row 4 is left to notice."""
    _fill(store, 6)
    new_prev = bytes(range(32))
    h = _rehashed(store, 4, prev_hash=new_prev)
    row = store.backend.row_at(4)
    assert row is not None
    forged = Receipt(
        position=4,
        stream_id=row.stream_id,
        version=row.version,
        hash=h.hex(),
        prev_hash=new_prev.hex(),
        recorded_at=row.recorded_at,
    )
    assert _problem(store.verify_receipt(forged)) == (4, "link")


def test_receipt_below_a_cut_is_missing(sqlite_store: EventStore) -> None:
    receipts = _fill(sqlite_store, 5)
    _allow_changes(sqlite_store)
    with sqlite_store.backend.transaction() as tx:
        tx.execute("DELETE FROM events WHERE position >= 4")
    assert _problem(sqlite_store.verify_receipt(receipts[4])) == (5, "missing")
    assert sqlite_store.verify_receipt(receipts[2]).ok


def test_partial_ranges_check_exactly_their_range(store: EventStore) -> None:
    _fill(store, 30)
    r = store.verify(11, 20)
    assert r.ok and (r.checked, r.from_position, r.to_position, r.head_position) == (10, 11, 20, 30)
    r = store.verify(25, 1000)
    assert r.ok and (r.checked, r.to_position) == (6, 30)
    r = store.verify(31)
    assert r.ok and r.checked == 0
    _set(store, 15, data=b'{"i":-1}')
    assert store.verify(16).ok and store.verify(1, 14).ok
    assert _problem(store.verify(15, 15)) == (15, "data_digest")
    assert _problem(store.verify(12, 20)) == (15, "data_digest")


def test_partial_range_after_a_missing_entry_and_with_a_gap(sqlite_store: EventStore) -> None:
    _fill(sqlite_store, 12)
    _allow_changes(sqlite_store)
    with sqlite_store.backend.transaction() as tx:
        tx.execute("DELETE FROM events WHERE position IN (5, 9)")
    assert _problem(sqlite_store.verify(6)) == (5, "missing")
    assert _problem(sqlite_store.verify(2, 8)) == (5, "gap")
    assert _problem(sqlite_store.verify(6, 12)) == (5, "missing")
    assert _problem(sqlite_store.verify(7, 12)) == (8, "version")  # s1's version 2 was at 5
    assert _problem(sqlite_store.verify(10, 12)) == (9, "missing")


def _rechain(store: EventStore, start: int) -> None:
    """Recompute every link and hash from ``start`` to the head: a consistent rewrite."""
    prev = store.backend.row_at(start - 1).hash if start > 1 else bytes(32)  # type: ignore[union-attr]
    for p in range(start, store.backend.head()[0] + 1):
        prev = _rehashed(store, p, prev_hash=prev)


def test_stream_versions_are_checked_in_partial_ranges(store: EventStore) -> None:
    """Two versions of one stream swapped, the chain rehashed: only the version check sees it."""
    for i in range(8):  # positions 1..8: a1 b1 a2 b2 a3 b3 a4 b4
        store.append("ab"[i % 2], [NewEvent(type="t", data={"i": i})])
    assert store.verify(4).ok and store.verify(7, 8).ok  # versions before the range are looked up
    _set(store, 3, version=100)
    _set(store, 5, version=2)
    _set(store, 3, version=3)
    _rechain(store, 3)
    assert _problem(store.verify()) == (3, "version")
    assert _problem(store.verify(3)) == (3, "version")  # a3 at 3, but a2 only comes at 5
    assert _problem(store.verify(4)) == (7, "version")  # a4 at 7 follows a2 (at 5), not a3
    assert store.verify(6).ok


# -- proofs: the entry header ------------------------------------------------------

HEADER_CHANGES: dict[str, Any] = {
    "position": 6,
    "stream_id": "forged",
    "type": "other",
    "version": 9,
    "recorded_at": "2000-01-01T00:00:00.000000Z",
    "data_digest": "11" * 32,
    "metadata_digest": "22" * 32,
    "prev_hash": "33" * 32,
    "hash": "44" * 32,
}


# each field rewritten alone (the stated hash left as it was), and rewritten with the hash
# recomputed so the header is self-consistent and only the Merkle path can refuse it
HEADER_CASES = [pytest.param(f, False, id=f"{f}-stale-hash") for f in sorted(HEADER_CHANGES)] + [
    pytest.param(f, True, id=f"{f}-rehashed") for f in sorted(HEADER_CHANGES) if f != "hash"
]


def _with_hash(entry: proofs.EntryHeader, **change: Any) -> proofs.EntryHeader:
    """The header with a field changed and its hash recomputed, so it is self-consistent."""
    e = msgspec.structs.replace(entry, **change)
    h = entry_hash(
        e.position,
        e.stream_id,
        e.version,
        e.type,
        e.recorded_at,
        bytes.fromhex(e.data_digest),
        bytes.fromhex(e.metadata_digest),
        bytes.fromhex(e.prev_hash),
    )
    return msgspec.structs.replace(e, hash=h.hex())


@pytest.fixture
def logged(sqlite_store: EventStore) -> tuple[EventStore, notes.Signer, notes.SignedCheckpoint]:
    log = notes.Signer.generate(ORIGIN)
    _fill(sqlite_store, 21)
    cp = sqlite_store.checkpoint(log)
    return sqlite_store, log, notes.open_checkpoint(cp.format(), log.verifier)


@pytest.mark.parametrize(("field", "rehash"), HEADER_CASES)
def test_inclusion_proof_with_a_rewritten_entry_header_is_rejected(logged: Any, field: str, rehash: bool) -> None:
    store, log, cp = logged
    proof = store.prove_inclusion(5, 21, origin=ORIGIN)
    assert proofs.check_inclusion(proof, cp).position == 5
    change = {field: HEADER_CHANGES[field]}
    entry = _with_hash(proof.entry, **change) if rehash else msgspec.structs.replace(proof.entry, **change)
    forged = msgspec.structs.replace(proof, entry=entry)
    if field == "position":  # and the leaf index with it, so only the hash can tell
        forged = msgspec.structs.replace(forged, leaf_index=5)
    with pytest.raises(VerificationError):
        proofs.check_inclusion(forged, cp)
    result = proofs.check_proof_text(msgspec.json.encode(forged).decode(), [cp.format()], log.verifier)
    assert not result.ok and result.kind == "invalid"


def _tlog_with_entry(text: str, entry: proofs.EntryHeader, index: int | None = None) -> str:
    lines = text.split("\n")
    assert lines[1].startswith("extra ")
    lines[1] = "extra " + base64.b64encode(msgspec.json.encode(entry, order="sorted")).decode()
    if index is not None:
        lines[2] = f"index {index}"
    return "\n".join(lines)


@pytest.mark.parametrize(("field", "rehash"), HEADER_CASES)
def test_tlog_proof_with_a_rewritten_entry_header_is_rejected(logged: Any, field: str, rehash: bool) -> None:
    store, log, cp = logged
    text = store.tlog_proof(5, cp)
    entry, _ = proofs.check_tlog_proof(text, log.verifier)
    assert entry.position == 5
    change = {field: HEADER_CHANGES[field]}
    forged_entry = _with_hash(entry, **change) if rehash else msgspec.structs.replace(entry, **change)
    forged = _tlog_with_entry(text, forged_entry, index=5 if field == "position" else None)
    with pytest.raises(VerificationError):
        proofs.check_tlog_proof(forged, log.verifier)
    assert not proofs.check_proof_text(forged, [], log.verifier).ok


def test_tlog_proof_round_trips_its_header_and_rejects_a_changed_index(logged: Any) -> None:
    store, log, cp = logged
    for position in (1, 16, 21):
        text = store.tlog_proof(position, cp)
        entry, opened = proofs.check_tlog_proof(text, log.verifier)
        assert entry == proofs.EntryHeader.from_row(store.backend.row_at(position))  # type: ignore[arg-type]
        assert opened.checkpoint == cp.checkpoint
        forged = text.replace(f"\nindex {position - 1}\n", f"\nindex {position % 21}\n")
        with pytest.raises(VerificationError):
            proofs.check_tlog_proof(forged, log.verifier)


def test_inclusion_proof_binds_leaf_index_size_and_root(logged: Any) -> None:
    store, _, cp = logged
    proof = store.prove_inclusion(7, 21, origin=ORIGIN)
    for change in (
        {"leaf_index": 7},
        {"tree_size": 20},
        {"root": "55" * 32},
        {"hashes": proof.hashes[:-1]},
        {"hashes": proof.hashes + ["66" * 32]},
    ):
        with pytest.raises(VerificationError):
            proofs.check_inclusion(msgspec.structs.replace(proof, **change), cp)


# -- checkpoints naming another log --------------------------------------------------


def _signed(signer: notes.Signer, origin: str, size: int, root: bytes) -> str:
    return notes.sign_note(notes.Checkpoint(origin, size, root).text(), signer).format()


def test_a_checkpoint_whose_origin_is_not_the_keys_name_is_rejected(logged: Any) -> None:
    store, log, cp = logged
    # the log's own key signs a checkpoint that claims to be of another log
    alien = _signed(log, OTHER, cp.checkpoint.size, cp.checkpoint.root)
    with pytest.raises(VerificationError, match="origin"):
        notes.open_checkpoint(alien, log.verifier)
    # the inclusion proof, offline receipt and verify-proof refuse it too
    proof = store.prove_inclusion(3, 21, origin=ORIGIN)
    result = proofs.check_proof_text(msgspec.json.encode(proof).decode(), [alien], log.verifier)
    assert not result.ok and "origin" in result.message
    receipt = store.tlog_proof(3, cp)
    head = receipt.partition("\n\n")[0]
    assert not proofs.check_proof_text(head + "\n\n" + alien, [], log.verifier).ok


def test_proofs_for_another_log_are_rejected(logged: Any) -> None:
    store, log, cp = logged
    other = notes.Signer.generate(OTHER)
    # another log (same entries, its own key) signs the same tree: a valid checkpoint of another log
    other_cp = notes.open_checkpoint(_signed(other, OTHER, cp.checkpoint.size, cp.checkpoint.root), other.verifier)
    proof = store.prove_inclusion(3, 21, origin=ORIGIN)
    proofs.check_inclusion(proof, cp)
    with pytest.raises(VerificationError, match="log"):
        proofs.check_inclusion(proof, other_cp)
    # consistency: both checkpoints must be of one log, and the proof of that log
    _fill(store, 4)
    cp2 = notes.open_checkpoint(store.checkpoint(log).format(), log.verifier)
    other_cp2 = notes.open_checkpoint(_signed(other, OTHER, 25, cp2.checkpoint.root), other.verifier)
    cproof = store.prove_consistency(21, 25, origin=ORIGIN)
    proofs.check_consistency(cproof, cp, cp2)
    for old, new in ((cp, other_cp2), (other_cp, cp2)):
        with pytest.raises(VerificationError, match="same log"):
            proofs.check_consistency(cproof, old, new)
    with pytest.raises(VerificationError, match="same log"):
        proofs.check_consistency(msgspec.structs.replace(cproof, origin=OTHER), cp, cp2)
    with pytest.raises(VerificationError, match="same log"):
        proofs.check_consistency(cproof, other_cp, other_cp2)
    # a tlog-proof carrying another log's checkpoint is checked against this log's key: refused
    text = store.tlog_proof(3, cp)
    swapped = text.partition("\n\n")[0] + "\n\n" + other_cp.format()
    with pytest.raises(VerificationError, match="signature"):
        proofs.check_tlog_proof(swapped, log.verifier)


def test_consistency_proof_binds_sizes_and_roots(logged: Any) -> None:
    store, log, cp = logged
    _fill(store, 4)
    cp2 = notes.open_checkpoint(store.checkpoint(log).format(), log.verifier)
    cproof = store.prove_consistency(21, 25, origin=ORIGIN)
    for change in (
        {"old_size": 20},
        {"new_size": 24},
        {"old_root": "77" * 32},
        {"new_root": "88" * 32},
        {"hashes": cproof.hashes[1:]},
        {"hashes": ["99" * 32] + cproof.hashes[1:]},
    ):
        with pytest.raises(VerificationError):
            proofs.check_consistency(msgspec.structs.replace(cproof, **change), cp, cp2)
    with pytest.raises(VerificationError):
        proofs.check_consistency(cproof, cp2, cp)


# -- the CLI: verify --checkpoint and cosign -------------------------------------------


class Keys:
    def __init__(self, tmp: Path):
        self.tmp, self.db = tmp, str(tmp / "a.db")
        self.log = notes.Signer.generate(ORIGIN)
        self.other = notes.Signer.generate(OTHER)
        self.witness = notes.Signer.generate("witness.example/w", cosigner=True)
        for name, key in (("log", self.log), ("other", self.other), ("w", self.witness)):
            (tmp / name).mkdir()
            (tmp / name / "signing.key").write_text(key.to_text() + "\n")
            (tmp / name / "verifier.pub").write_text(key.verifier.to_text() + "\n")

    def run(self, *args: str) -> Any:
        return CliRunner().invoke(main, ["--db", self.db, *args])

    def file(self, name: str, text: str) -> str:
        (self.tmp / name).write_text(text)
        return str(self.tmp / name)


def test_cli_verify_and_cosign_refuse_a_checkpoint_of_another_log(tmp_path: Path) -> None:
    k = Keys(tmp_path)
    with EventStore.open(k.db) as s:
        _fill(s, 6)
        cp = s.checkpoint(k.log)
    pub, wkey, state = str(tmp_path / "log/verifier.pub"), str(tmp_path / "w"), str(tmp_path / "state.json")
    good = k.file("cp", cp.format())
    assert k.run("verify", "--checkpoint", good, "--public-key", pub).exit_code == 0
    # signed by the log's key but naming another log
    alien = k.file("alien", _signed(k.log, OTHER, 6, cp.checkpoint.root))
    r = k.run("verify", "--checkpoint", alien, "--public-key", pub, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"]["kind"] == "signature"
    r = k.run("cosign", "--key", wkey, "--checkpoint", alien, "--public-key", pub, "--state", state)
    assert r.exit_code == 2 and "origin" in r.stderr and not Path(state).exists()
    # an auditor's state remembered for another log
    other_state = auditor.AuditorState(
        origin=OTHER,
        tree_size=6,
        root=base64.b64encode(cp.checkpoint.root).decode(),
        checkpoint=_signed(k.other, OTHER, 6, cp.checkpoint.root),
    )
    auditor.save_state(state, other_state)
    before = Path(state).read_text()
    r = k.run("verify", "--checkpoint", good, "--public-key", pub, "--state", state, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"]["kind"] == "origin"
    r = k.run("cosign", "--key", wkey, "--checkpoint", good, "--public-key", pub, "--state", state)
    assert r.exit_code == 2 and OTHER in r.stderr and "cosignature" not in r.stdout
    assert Path(state).read_text() == before


def test_cli_verify_partial_range_and_link_tampering(tmp_path: Path) -> None:
    k = Keys(tmp_path)
    with EventStore.open(k.db) as s:
        _fill(s, 12)
        _rehashed(s, 8, prev_hash=bytes(32))
    r = k.run("verify", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"] == json.loads(r.stdout)["problem"] | {
        "position": 8,
        "kind": "link",
    }
    r = k.run("verify", "--from", "2", "--to", "7", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["checked"] == 6
    r = k.run("verify", "--from", "9", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"]["position"] == 9
