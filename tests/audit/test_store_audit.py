"""Checkpoints, proofs and the stored tree through the store API, on every backend."""

from __future__ import annotations

import base64
import threading

import pytest

from eventstore import EventStore, NewEvent, VerificationError, auditor, merkle, notes, proofs
from eventstore.audit.log import TransparencyLog


def _fill(store: EventStore, n: int) -> None:
    for start in range(0, n, 100):
        store.append(f"s{start % 3}", [NewEvent(type="t", data={"i": i}) for i in range(start, min(n, start + 100))])


def _leaves(store: EventStore) -> list[bytes]:
    return [merkle.leaf_hash(r.hash) for rows in store.iter_rows() for r in rows]


def test_checkpoint_and_proofs_verify_offline(store: EventStore) -> None:
    log = notes.Signer.generate("test.example/log")
    _fill(store, 70)
    cp1 = store.checkpoint(log)
    _fill(store, 45)
    cp2 = store.checkpoint(log)
    leaves = _leaves(store)
    assert cp2.checkpoint.size == 115 and cp2.checkpoint.root == merkle.root_of_leaves(leaves)
    assert cp1.checkpoint.root == merkle.root_of_leaves(leaves[:70])
    assert [c[1] for c in store.checkpoints("test.example/log")] == [70, 115]

    opened1 = notes.open_checkpoint(cp1.format(), log.verifier)
    opened2 = notes.open_checkpoint(cp2.format(), log.verifier)
    entry = proofs.check_inclusion(store.prove_inclusion(33, 70, origin="test.example/log"), opened1)
    assert entry.position == 33
    proofs.check_consistency(store.prove_consistency(70, 115, origin="test.example/log"), opened1, opened2)
    receipt = store.tlog_proof(100, cp2)
    assert proofs.check_tlog_proof(receipt, log.verifier)[0].position == 100
    assert store.verify_checkpoint(opened2).ok


def test_concurrent_tree_maintenance_agrees(backend_url: str) -> None:
    """Two processes (here: two connections) catching the tree up at once write the same nodes."""
    with EventStore.open(backend_url, durability="process") as a, EventStore.open(backend_url) as b:
        _fill(a, 600)
        errors: list[BaseException] = []

        def sync(s: EventStore) -> None:
            try:
                s.tree.sync(batch=32)
            except BaseException as e:  # noqa: BLE001  (reported below)
                errors.append(e)

        threads = [threading.Thread(target=sync, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert a.tree.synced_size() == 592
        leaves = _leaves(a)
        for n in (1, 16, 17, 512, 599, 600):
            assert b.tree_root(n) == merkle.root_of_leaves(leaves[:n])


def test_same_size_checkpoint_with_another_root_is_a_fork_against_the_state(sqlite_store: EventStore) -> None:
    """A log that signs two roots for one size has shown two views: the auditor must refuse the second."""
    log = notes.Signer.generate("test.example/log")
    _fill(sqlite_store, 20)
    good = sqlite_store.checkpoint(log)
    state = auditor.AuditorState(
        origin="test.example/log",
        tree_size=20,
        root=base64.b64encode(good.checkpoint.root).decode(),
        checkpoint=good.format(),
    )
    assert sqlite_store.verify_checkpoint(good, state=state).ok
    forged = notes.sign_note(notes.Checkpoint("test.example/log", 20, bytes(32)).text(), log)
    other = notes.SignedCheckpoint(notes.Checkpoint.parse(forged.text), forged)
    report = sqlite_store.verify_checkpoint(other, state=state)
    assert not report.ok and report.problem is not None and report.problem.kind == "fork"


def test_checkpoint_refuses_a_view_inconsistent_with_the_newest_signed(sqlite_store: EventStore) -> None:
    log = notes.Signer.generate("test.example/log")
    _fill(sqlite_store, 40)
    sqlite_store.checkpoint(log)
    _fill(sqlite_store, 5)
    # the newest checkpoint signed under this origin is of another history (here: recorded by hand)
    for size in (42, 50):  # a rewritten prefix, then a log cut below what was signed
        forged = notes.sign_note(notes.Checkpoint("test.example/log", size, bytes(32)).text(), log)
        with sqlite_store.backend.transaction() as tx:
            tx.execute(
                "INSERT INTO checkpoints (origin, tree_size, root, note, created_at) VALUES (?, ?, ?, ?, ?)",
                ("test.example/log", size, bytes(32), forged.format(), "2026-01-01T00:00:00.000000Z"),
            )
        before = len(sqlite_store.checkpoints())
        with pytest.raises(VerificationError, match=f"refusing to sign: .* size {size}"):
            sqlite_store.checkpoint(log)
        assert len(sqlite_store.checkpoints()) == before  # nothing written
    # another origin's checkpoints do not constrain this one
    assert sqlite_store.checkpoint(notes.Signer.generate("other.example/log")).checkpoint.size == 45


def test_proof_requests_beyond_the_log_are_user_errors(store: EventStore) -> None:
    from eventstore.errors import UserError

    _fill(store, 10)
    with pytest.raises(UserError):
        store.prove_inclusion(11)
    with pytest.raises(UserError):
        store.prove_consistency(5, 11)
    with pytest.raises(UserError):
        store.prove_consistency(0, 5)


def test_a_checkpoint_signed_by_another_process_meanwhile_is_not_taken_for_truncation(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes checkpoint at once: one reads the head, the other appends and signs a larger
    checkpoint before the first reads the newest signed one. The first must sign its (smaller,
    consistent) size, not refuse with "the log was truncated"."""
    log = notes.Signer.generate("test.example/log")
    with EventStore.open(backend_url) as store, EventStore.open(backend_url) as other:
        _fill(store, 20)
        store.checkpoint(log)
        read_head = TransparencyLog._head

        def head_then_the_other_process_runs(self: TransparencyLog) -> int:
            size = read_head(self)
            if self.store is store:
                _fill(other, 5)
                other.checkpoint(log)
            return size

        monkeypatch.setattr(TransparencyLog, "_head", head_then_the_other_process_runs)
        cp = store.checkpoint(log)
        monkeypatch.undo()
        assert cp.checkpoint.size in (20, 25)
        assert cp.checkpoint.root == merkle.root_of_leaves(_leaves(store)[: cp.checkpoint.size])
        assert store.transparency.check().ok
