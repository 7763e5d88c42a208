"""Auditor and Witness from Python: the policy `verify --state` and `cosign` run, without the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import EventStore, NewEvent, VerificationError, notes
from eventstore.audit import Auditor, Witness
from eventstore.errors import UserError


def _fill(store: EventStore, n: int) -> None:
    store.append("s", [NewEvent(type="t", data={"i": i}) for i in range(n)])


def test_an_auditor_remembers_and_refuses_a_rollback(sqlite_store: EventStore, tmp_path: Path) -> None:
    log = notes.Signer.generate("test.example/log")
    _fill(sqlite_store, 10)
    cp1 = sqlite_store.checkpoint(log).format()
    _fill(sqlite_store, 5)
    cp2 = sqlite_store.checkpoint(log).format()
    auditor = Auditor(log.verifier, tmp_path / "state.json")
    assert auditor.state is None
    assert auditor.verify(sqlite_store, cp1).ok and auditor.state is not None and auditor.state.tree_size == 10
    assert auditor.verify(sqlite_store, cp2).ok and auditor.state.tree_size == 15
    report = auditor.verify(sqlite_store, cp1)
    assert not report.ok and report.problem is not None and report.problem.kind == "rollback"
    assert auditor.state.tree_size == 15  # a refused checkpoint is not remembered
    other = notes.Signer.generate("test.example/log")
    bad = Auditor(other.verifier, tmp_path / "other.json").verify(sqlite_store, cp2)
    assert not bad.ok and bad.problem is not None and bad.problem.kind == "signature"


def test_a_witness_cosigns_only_consistent_checkpoints(sqlite_store: EventStore, tmp_path: Path) -> None:
    log = notes.Signer.generate("test.example/log")
    witness = Witness(notes.Signer.generate("witness.example/w", cosigner=True), log.verifier, tmp_path / "w.json")
    _fill(sqlite_store, 10)
    note = witness.cosign(sqlite_store.checkpoint(log).format(), store=sqlite_store)
    assert notes.open_checkpoint(note.format(), log.verifier, (witness.signer.verifier,)).checkpoint.size == 10
    _fill(sqlite_store, 3)
    witness.cosign(sqlite_store.checkpoint(log).format(), store=sqlite_store)
    forked = notes.sign_note(notes.Checkpoint("test.example/log", 13, bytes(32)).text(), log).format()
    with pytest.raises(VerificationError, match="forked"):
        witness.cosign(forked, store=sqlite_store)
    with pytest.raises(UserError, match="cosigner key"):
        Witness(log, log.verifier, tmp_path / "x.json")
    with pytest.raises(UserError, match="not a cosigner key"):
        Auditor(log.verifier, witnesses=[log.verifier])
