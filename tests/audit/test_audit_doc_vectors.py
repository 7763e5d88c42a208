"""docs/audit.md's test vectors reproduce with the code, and verify."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from eventstore import merkle, notes, proofs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def block(tag: str) -> str:
    m = re.search(rf"```{tag}\n(.*?)```", (DOCS / "audit.md").read_text(), re.S)
    assert m, tag
    return m.group(1)


def entry_hashes() -> list[bytes]:
    fmt = (DOCS / "format.md").read_text()
    return [bytes.fromhex(h) for h in re.findall(r"^hash: ([0-9a-f]{64})$", fmt, re.M)]


def test_checkpoint_cosignature_and_tlog_proof_vectors() -> None:
    keys = dict(line.split(": ", 1) for line in block("vector-keys").strip().splitlines())
    leaves = [merkle.leaf_hash(h) for h in entry_hashes()]
    assert merkle.root_of_leaves(leaves).hex() == keys["root_size_3"]
    assert merkle.root_of_leaves(leaves[:2]).hex() == keys["root_size_2"]

    log = notes.Signer.from_text(keys["log_signing_key"])
    assert log.verifier.to_text() == keys["log_verifier_key"]
    checkpoint = notes.sign_note(notes.Checkpoint(log.name, 3, bytes.fromhex(keys["root_size_3"])).text(), log)
    assert checkpoint.format() == block("vector-checkpoint")

    witness = notes.Signer("witness.example/w1", notes.ALG_COSIGNATURE_V1,
                           hashlib.sha256(b"eventstore test witness").digest())
    assert witness.verifier.to_text() == keys["witness_verifier_key"]
    assert notes.cosign(checkpoint, witness, timestamp=1764000000).format() == block("vector-cosigned")
    signed = notes.open_checkpoint(block("vector-cosigned"), log.verifier, (witness.verifier,))
    assert signed.checkpoint.size == 3

    entry, cp = proofs.check_tlog_proof(block("vector-tlog-proof"), log.verifier)
    assert entry.position == 2 and cp.checkpoint.root.hex() == keys["root_size_3"]
