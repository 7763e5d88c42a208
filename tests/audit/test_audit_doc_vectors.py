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
    leaves = [merkle.leaf_hash(h) for h in entry_hashes()[:3]]  # the first three: the v1 chain
    assert merkle.root_of_leaves(leaves).hex() == keys["root_size_3"]
    assert merkle.root_of_leaves(leaves[:2]).hex() == keys["root_size_2"]

    log = notes.Signer.from_text(keys["log_signing_key"])
    assert log.verifier.to_text() == keys["log_verifier_key"]
    checkpoint = notes.sign_note(notes.Checkpoint(log.name, 3, bytes.fromhex(keys["root_size_3"])).text(), log)
    assert checkpoint.format() == block("vector-checkpoint")

    witness = notes.Signer(
        "witness.example/w1", notes.ALG_COSIGNATURE_V1, hashlib.sha256(b"eventstore test witness").digest()
    )
    assert witness.verifier.to_text() == keys["witness_verifier_key"]
    assert notes.cosign(checkpoint, witness, timestamp=1764000000).format() == block("vector-cosigned")
    signed = notes.open_checkpoint(block("vector-cosigned"), log.verifier, (witness.verifier,))
    assert signed.checkpoint.size == 3

    entry, cp = proofs.check_tlog_proof(block("vector-tlog-proof"), log.verifier)
    assert entry.position == 2 and cp.checkpoint.root.hex() == keys["root_size_3"]


def test_consistency_proof_vector_verifies_offline() -> None:
    keys = dict(line.split(": ", 1) for line in block("vector-keys").strip().splitlines())
    log = notes.Signer.from_text(keys["log_signing_key"])
    leaves = [merkle.leaf_hash(h) for h in entry_hashes()[:3]]  # the first three: the v1 chain
    cp2 = notes.sign_note(notes.Checkpoint(log.name, 2, merkle.root_of_leaves(leaves[:2])).text(), log)
    assert cp2.format() == block("vector-checkpoint-2")
    check = proofs.check_proof_text(
        block("vector-consistency"), [block("vector-checkpoint-2"), block("vector-checkpoint")], log.verifier
    )
    assert check.ok and check.kind == "consistency"


def test_merkle_vectors_match_the_tree() -> None:
    lines = dict(line.split(": ", 1) for line in block("vector-merkle").strip().splitlines())
    leaves = [merkle.leaf_hash(b"" if x == "-" else bytes.fromhex(x)) for x in lines.pop("leaves").split()]
    assert len(leaves) == 8

    def ref(start: int, end: int) -> bytes:
        return merkle.root_of_leaves(leaves[start:end])

    for key, value in lines.items():
        kind, *args = key.split()
        nums = [int(a) for a in args]
        hashes = [bytes.fromhex(h) for h in value.split()]
        if kind == "root":
            assert merkle.root_of_leaves(leaves[: nums[0]]) == hashes[0]
        elif kind == "inclusion":
            i, n = nums
            assert merkle.inclusion_path(i, n, ref) == hashes
            merkle.verify_inclusion(i, n, leaves[i], hashes, ref(0, n))
        else:
            m, n = nums
            assert merkle.consistency_path(m, n, ref) == hashes
            merkle.verify_consistency(m, n, ref(0, m), ref(0, n), hashes)
