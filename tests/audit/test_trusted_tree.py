"""Stored tree nodes are a cache, never a source: what the store signs and proves comes from entries.

Attacks from the hardening issue: a node planted for a future chunk, a log rewritten below a
signed checkpoint with every later hash recomputed, a damaged node, a forged checkpoint row.
Each runs on every backend.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventStore, NewEvent, VerificationError, merkle, notes, proofs
from eventstore.cli import main
from eventstore.errors import DerivedDataDamaged
from eventstore.hashing import GENESIS_HASH, entry_hash

ORIGIN = "test.example/log"


def _fill(store: EventStore, n: int, stream: str = "s") -> None:
    for start in range(0, n, 50):
        store.append(stream, [NewEvent(type="t", data={"i": i}) for i in range(start, min(n, start + 50))])


def _leaves(store: EventStore) -> list[bytes]:
    return [merkle.leaf_hash(r.hash) for rows in store.iter_rows() for r in rows]


def _node_count(store: EventStore) -> int:
    return int(store.backend.query("SELECT count(*) FROM merkle_nodes")[0][0])


def _rewrite_from(store: EventStore, k: int) -> None:
    """An attacker with write access changes entry k's payload and recomputes every later hash."""
    rows = [r for page in store.iter_rows(k) for r in page]
    prev = store.backend.row_at(k - 1).hash if k > 1 else GENESIS_HASH  # type: ignore[union-attr]
    with store.backend.transaction() as tx:
        if store.backend.dialect == "sqlite":
            tx.execute("DROP TRIGGER events_no_update")
        else:
            tx.execute("ALTER TABLE events DISABLE TRIGGER USER")
        for i, r in enumerate(rows):
            data = b'{"forged":true}' if i == 0 else r.data
            assert data is not None
            data_digest = hashlib.sha256(data).digest()
            h = entry_hash(
                r.position, r.stream_id, r.version, r.type, r.recorded_at, data_digest, r.metadata_digest, prev
            )
            tx.execute(
                "UPDATE events SET data = ?, data_digest = ?, prev_hash = ?, hash = ? WHERE position = ?",
                (data, data_digest, prev, h, r.position),
            )
            prev = h


def test_a_node_planted_for_a_future_chunk_is_never_signed(store: EventStore) -> None:
    """The forged receipt attack: plant the node of chunk 1 (leaves 16..31) holding a made-up entry."""
    log = notes.Signer.generate(ORIGIN)
    _fill(store, 16)
    store.checkpoint(log)
    fake_leaves = [merkle.leaf_hash(hashlib.sha256(b"made-up %d" % i).digest()) for i in range(16)]
    with store.backend.transaction() as tx:
        tx.execute(
            "INSERT INTO merkle_nodes (level, idx, hash) VALUES (4, 1, ?)", (merkle.root_of_leaves(fake_leaves),)
        )
    _fill(store, 20, stream="later")  # routine appends complete the chunk with real entries
    cp = store.checkpoint(log)
    assert cp.checkpoint.size == 36
    assert cp.checkpoint.root == merkle.root_of_leaves(_leaves(store))
    # the planted row was overwritten from the log when the tree caught up
    assert store.tree.stored_nodes()[(4, 1)] == merkle.root_of_leaves(_leaves(store)[16:32])
    receipt = store.tlog_proof(20, cp)
    assert proofs.check_tlog_proof(receipt, log.verifier)[0].position == 20


def test_a_node_planted_before_the_first_checkpoint_is_never_signed(store: EventStore) -> None:
    _fill(store, 40)
    with store.backend.transaction() as tx:
        tx.execute("INSERT INTO merkle_nodes (level, idx, hash) VALUES (5, 0, ?)", (bytes(32),))
        tx.execute("INSERT INTO merkle_state (id, size) VALUES (1, 32)")
    log = notes.Signer.generate(ORIGIN)
    cp = store.checkpoint(log)  # the first checkpoint of an origin is computed from every entry
    assert cp.checkpoint.root == merkle.root_of_leaves(_leaves(store))


def test_a_log_rewritten_below_a_signed_checkpoint_is_refused(store: EventStore) -> None:
    log = notes.Signer.generate(ORIGIN)
    _fill(store, 40)
    store.checkpoint(log)
    _rewrite_from(store, 10)  # tree rows left alone
    _fill(store, 5, stream="more")
    before = len(store.checkpoints())
    with pytest.raises(VerificationError, match="refusing to sign: the log no longer matches"):
        store.checkpoint(log)
    assert len(store.checkpoints()) == before


def test_an_entry_changed_after_the_newest_checkpoint_is_refused(store: EventStore) -> None:
    """Entries since the anchor are verified like `verify` does before their root is signed."""
    log = notes.Signer.generate(ORIGIN)
    _fill(store, 20)
    store.checkpoint(log)
    _fill(store, 20, stream="more")
    with store.backend.transaction() as tx:
        if store.backend.dialect == "sqlite":
            tx.execute("DROP TRIGGER events_no_update")
        else:
            tx.execute("ALTER TABLE events DISABLE TRIGGER USER")
        tx.execute("UPDATE events SET data = ? WHERE position = 30", (b'{"i":-1}',))
    with pytest.raises(VerificationError, match="refusing to sign: .*position 30"):
        store.checkpoint(log)


def test_a_damaged_node_is_reported_never_proven_and_repair_rebuilds_it(store: EventStore) -> None:
    log = notes.Signer.generate(ORIGIN)
    _fill(store, 100)
    cp = store.checkpoint(log)
    assert store.transparency.check().ok
    with store.backend.transaction() as tx:
        tx.execute("UPDATE merkle_nodes SET hash = ? WHERE level = 4 AND idx = 3", (bytes(32),))  # leaf 39's sibling
    with pytest.raises(DerivedDataDamaged, match="audit repair"):
        store.prove_inclusion(40, 100)
    with pytest.raises(DerivedDataDamaged):
        store.tlog_proof(40, cp)
    with pytest.raises(DerivedDataDamaged):
        store.prove_consistency(35, 100)
    _fill(store, 3)
    assert store.checkpoint(log).checkpoint.root == merkle.root_of_leaves(_leaves(store))  # (4, 3) not used
    with store.backend.transaction() as tx:
        tx.execute("UPDATE merkle_nodes SET hash = ? WHERE level = 5 AND idx = 2", (bytes(32),))  # in the frontier
    _fill(store, 3)
    with pytest.raises(DerivedDataDamaged):  # nor is a checkpoint signed from it
        store.checkpoint(log)
    report = store.transparency.check()
    assert not report.ok
    assert [(p.kind, p.level, p.idx) for p in report.problems] == [("node", 4, 3), ("node", 5, 2)]
    store.transparency.repair()
    assert store.transparency.check().ok
    assert proofs.check_tlog_proof(store.tlog_proof(40, cp), log.verifier)[0].position == 40
    assert store.checkpoint(log).checkpoint.size == 106


def test_a_checkpoint_row_without_the_logs_signature_is_refused(store: EventStore) -> None:
    log = notes.Signer.generate(ORIGIN)
    _fill(store, 20)
    store.checkpoint(log)
    intruder = notes.Signer.generate(ORIGIN)  # same name, another key
    fake = notes.sign_note(notes.Checkpoint(ORIGIN, 20, bytes(32)).text(), intruder)
    with store.backend.transaction() as tx:
        tx.execute(
            "INSERT INTO checkpoints (origin, tree_size, root, note, created_at) VALUES (?, ?, ?, ?, ?)",
            (ORIGIN, 20, bytes(32), fake.format(), "2026-01-01T00:00:00.000000Z"),
        )
    with pytest.raises(VerificationError, match="checkpoints table was tampered"):
        store.checkpoint(log)


def test_proofs_and_roots_read_without_writing(store: EventStore) -> None:
    """Auditors hold read-only access: proofs compute what the stored tree lacks in memory."""
    _fill(store, 70)
    leaves = _leaves(store)
    assert _node_count(store) == 0
    assert store.tree_root(70) == merkle.root_of_leaves(leaves)
    p = store.prove_inclusion(33, 50)
    merkle.verify_inclusion(
        32, 50, leaves[32], [bytes.fromhex(h) for h in p.hashes], merkle.root_of_leaves(leaves[:50])
    )
    store.prove_consistency(17, 70)
    assert _node_count(store) == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_proof_verifies_against_the_root_of_the_entries(sqlite_url: str, data: st.DataObject) -> None:
    with EventStore.open(sqlite_url) as store:  # one log for every example: filled once
        if store.backend.head()[0] == 0:
            _fill(store, 90)
            store.checkpoint(notes.Signer.generate(ORIGIN))
            _fill(store, 13, stream="tail")
        leaves = _leaves(store)
        size = data.draw(st.integers(1, len(leaves)))
        position = data.draw(st.integers(1, size))
        p = store.prove_inclusion(position, size)
        root = merkle.root_of_leaves(leaves[:size])
        assert p.root == root.hex()
        merkle.verify_inclusion(position - 1, size, leaves[position - 1], [bytes.fromhex(h) for h in p.hashes], root)
        c = store.prove_consistency(position, size)
        merkle.verify_consistency(
            position, size, merkle.root_of_leaves(leaves[:position]), root, [bytes.fromhex(h) for h in c.hashes]
        )


def test_cli_audit_check_and_repair(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")

    def cli(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, ["--db", db, *args])

    assert cli("keygen", "--name", ORIGIN, "--out", str(tmp_path / "k")).exit_code == 0
    with EventStore.open(db) as store:
        _fill(store, 64)
    r = cli("checkpoint", "--key", str(tmp_path / "k"))
    assert r.exit_code == 0
    (tmp_path / "cp").write_text(r.stdout)
    assert cli("audit", "check").exit_code == 0
    with EventStore.open(db) as store, store.backend.transaction() as tx:
        tx.execute("UPDATE merkle_nodes SET hash = ? WHERE level = 5 AND idx = 1", (bytes(32),))
    r = cli("receipt", "--position", "10", "--checkpoint", str(tmp_path / "cp"))  # (5, 1) is on its path
    assert r.exit_code != 0 and not r.stdout and "audit repair" in r.stderr
    r = cli("prove", "inclusion", "--position", "10", "--checkpoint", str(tmp_path / "cp"))
    assert r.exit_code != 0 and not r.stdout
    r = cli("audit", "check")
    assert r.exit_code == 1 and "node (5, 1)" in r.stdout
    r = cli("audit", "repair")
    assert r.exit_code == 0, r.output
    assert cli("audit", "check").exit_code == 0
    r = cli("receipt", "--position", "40", "--checkpoint", str(tmp_path / "cp"))
    assert r.exit_code == 0
    (tmp_path / "rec").write_text(r.stdout)
    r = cli("verify-proof", str(tmp_path / "rec"), "--public-key", str(tmp_path / "k/verifier.pub"))
    assert r.exit_code == 0, r.output
