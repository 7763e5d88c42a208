"""Proofs an auditor checks offline, with nothing but a checkpoint, a public key and docs/audit.md.

* ``InclusionProof`` (JSON): the entry's header fields, from which the verifier
  recomputes its entry hash (docs/format.md), the leaf index and the RFC 9162
  inclusion path up to the checkpoint's root.
* ``ConsistencyProof`` (JSON): the RFC 9162 path showing the old tree is a prefix
  of the new one.
* The offline receipt in the C2SP tlog-proof form (``c2sp.org/tlog-proof@v1``):
  ``extra`` carries the entry header as canonical JSON, then the index, the
  inclusion path and the signed checkpoint, verbatim.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

import msgspec

from ..errors import UserError, VerificationError
from ..hashing import entry_hash
from ..records import Row
from . import merkle
from .notes import SignedCheckpoint, Verifier, open_checkpoint

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


class EntryHeader(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Every column that the entry hash commits to (payload digests, not payloads), hex for bytes.

    ``event_id`` is present only for entries appended with an id (hash scheme v2); an entry
    without one encodes exactly as before it existed.
    """

    position: int
    stream_id: str
    version: int
    type: str
    recorded_at: str
    data_digest: str
    metadata_digest: str
    prev_hash: str
    hash: str
    event_id: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> EntryHeader:
        return cls(
            position=row.position,
            stream_id=row.stream_id,
            version=row.version,
            type=row.type,
            recorded_at=row.recorded_at,
            data_digest=row.data_digest.hex(),
            metadata_digest=row.metadata_digest.hex(),
            prev_hash=row.prev_hash.hex(),
            hash=row.hash.hex(),
            event_id=row.event_id,
        )

    def recompute(self) -> bytes:
        """The entry hash from the fields; raises VerificationError if it differs from ``hash``."""
        try:
            h = entry_hash(
                self.position,
                self.stream_id,
                self.version,
                self.type,
                self.recorded_at,
                bytes.fromhex(self.data_digest),
                bytes.fromhex(self.metadata_digest),
                bytes.fromhex(self.prev_hash),
                self.event_id,
            )
        except ValueError:
            raise VerificationError("the entry's digests are not hex") from None
        if h.hex() != self.hash:
            raise VerificationError(f"the entry at position {self.position} does not hash to its stated hash")
        return h


class InclusionProof(msgspec.Struct, frozen=True, kw_only=True):
    format: Literal["eventstore/inclusion-proof/v1"] = "eventstore/inclusion-proof/v1"
    origin: str
    tree_size: int
    root: str
    leaf_index: int
    entry: EntryHeader
    hashes: list[str]


class ConsistencyProof(msgspec.Struct, frozen=True, kw_only=True):
    format: Literal["eventstore/consistency-proof/v1"] = "eventstore/consistency-proof/v1"
    origin: str
    old_size: int
    old_root: str
    new_size: int
    new_root: str
    hashes: list[str]


def _unhex(values: list[str]) -> list[bytes]:
    try:
        out = [bytes.fromhex(v) for v in values]
    except ValueError:
        raise VerificationError("a proof hash is not hex") from None
    if any(len(h) != 32 for h in out):
        raise VerificationError("a proof hash is not 32 bytes")
    return out


def check_inclusion(proof: InclusionProof, checkpoint: SignedCheckpoint) -> EntryHeader:
    """Verify an inclusion proof against a verified checkpoint; return the proven entry."""
    cp = checkpoint.checkpoint
    if proof.origin and proof.origin != cp.origin:
        raise VerificationError(f"the proof is for log {proof.origin!r}, the checkpoint for {cp.origin!r}")
    if proof.tree_size != cp.size or proof.root != cp.root.hex():
        raise VerificationError(
            f"the proof is for tree size {proof.tree_size}, the checkpoint has size {cp.size} (or another root)"
        )
    if proof.leaf_index != proof.entry.position - 1:
        raise VerificationError("the leaf index is not the entry's position - 1")
    h = proof.entry.recompute()
    merkle.verify_inclusion(proof.leaf_index, cp.size, merkle.leaf_hash(h), _unhex(proof.hashes), cp.root)
    return proof.entry


def check_consistency(proof: ConsistencyProof, old: SignedCheckpoint, new: SignedCheckpoint) -> None:
    """Verify that ``old`` is a prefix of ``new`` (both checkpoints already verified)."""
    o, n = old.checkpoint, new.checkpoint
    if o.origin != n.origin or (proof.origin and proof.origin != o.origin):
        raise VerificationError("the checkpoints and the proof are not for the same log")
    if (
        (proof.old_size, proof.new_size) != (o.size, n.size)
        or proof.old_root != o.root.hex()
        or proof.new_root != n.root.hex()
    ):
        raise VerificationError("the proof does not connect these two checkpoints")
    merkle.verify_consistency(o.size, n.size, o.root, n.root, _unhex(proof.hashes))


# -- C2SP tlog-proof -----------------------------------------------------------------


def format_tlog_proof(entry: EntryHeader, hashes: list[bytes], checkpoint_note: str) -> str:
    extra = base64.b64encode(msgspec.json.encode(entry, order="sorted")).decode()
    lines = [TLOG_PROOF_HEADER, f"extra {extra}", f"index {entry.position - 1}"]
    lines += [base64.b64encode(h).decode() for h in hashes]
    return "\n".join(lines) + "\n\n" + checkpoint_note


def check_tlog_proof(
    text: str, verifier: Verifier, witnesses: tuple[Verifier, ...] = ()
) -> tuple[EntryHeader, SignedCheckpoint]:
    """Verify an offline receipt with nothing else: signature, entry hash and inclusion."""
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise UserError("not a tlog-proof: no blank line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise UserError(f"not a tlog-proof: the first line must be {TLOG_PROOF_HEADER}")
    i = 1
    entry: EntryHeader | None = None
    if i < len(lines) and lines[i].startswith("extra "):
        try:
            entry = msgspec.json.decode(base64.b64decode(lines[i][6:], validate=True), type=EntryHeader)
        except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as e:
            raise UserError(f"the tlog-proof's extra line is not an eventstore entry header: {e}") from None
        i += 1
    digits = lines[i][6:] if i < len(lines) and lines[i].startswith("index ") else ""
    if not digits.isascii() or not digits.isdigit() or (digits.startswith("0") and digits != "0"):
        raise UserError("not a tlog-proof: missing 'index N' line (N decimal, no leading zeros)")
    index = int(digits)
    try:
        hashes = [base64.b64decode(x, validate=True) for x in lines[i + 1 :]]
    except (binascii.Error, ValueError):
        raise VerificationError("a proof hash in the tlog-proof is not base64") from None
    if any(len(h) != 32 for h in hashes):
        raise VerificationError("a proof hash in the tlog-proof is not 32 bytes")
    if entry is None:
        raise UserError("this tlog-proof carries no entry header (extra line); nothing to check it against")
    cp = open_checkpoint(note, verifier, witnesses)
    if index != entry.position - 1:
        raise VerificationError("the tlog-proof's index is not the entry's position - 1")
    h = entry.recompute()
    merkle.verify_inclusion(index, cp.checkpoint.size, merkle.leaf_hash(h), hashes, cp.checkpoint.root)
    return entry, cp


class ProofCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of ``verify-proof``."""

    ok: bool
    kind: Literal["tlog-proof", "inclusion", "consistency", "invalid"]
    message: str
    position: int | None = None
    tree_size: int | None = None


def check_proof_text(
    text: str, checkpoints: list[str], verifier: Verifier, witnesses: tuple[Verifier, ...] = ()
) -> ProofCheck:
    """Verify any proof eventstore hands out, offline: JSON inclusion (one checkpoint),
    JSON consistency (old and new checkpoints), or a tlog-proof (checkpoint inside)."""
    try:
        if text.startswith(TLOG_PROOF_HEADER):
            entry, cp = check_tlog_proof(text, verifier, witnesses)
            return ProofCheck(
                ok=True,
                kind="tlog-proof",
                position=entry.position,
                tree_size=cp.checkpoint.size,
                message=f"entry {entry.position} ({entry.type} on {entry.stream_id!r}) is in "
                f"{cp.checkpoint.origin} at tree size {cp.checkpoint.size}",
            )
        try:
            doc = msgspec.json.decode(text)
        except msgspec.DecodeError:
            raise UserError("the proof is neither JSON nor a c2sp.org/tlog-proof@v1") from None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        signed = [open_checkpoint(c, verifier, witnesses) for c in checkpoints]
        if fmt == "eventstore/inclusion-proof/v1":
            if len(signed) != 1:
                raise UserError("an inclusion proof is checked against exactly one --checkpoint")
            proof = msgspec.convert(doc, InclusionProof)
            entry = check_inclusion(proof, signed[0])
            return ProofCheck(
                ok=True,
                kind="inclusion",
                position=entry.position,
                tree_size=proof.tree_size,
                message=f"entry {entry.position} is included in the tree of size {proof.tree_size}",
            )
        if fmt == "eventstore/consistency-proof/v1":
            if len(signed) != 2:
                raise UserError("a consistency proof is checked against two --checkpoint options (old, then new)")
            cproof = msgspec.convert(doc, ConsistencyProof)
            check_consistency(cproof, signed[0], signed[1])
            return ProofCheck(
                ok=True,
                kind="consistency",
                tree_size=cproof.new_size,
                message=f"the tree of size {cproof.old_size} is a prefix of the tree of size "
                f"{cproof.new_size}: the log only grew",
            )
        raise UserError(f"unknown proof format {fmt!r}")
    except msgspec.ValidationError as e:
        raise UserError(f"malformed proof: {e}") from None
    except VerificationError as e:
        return ProofCheck(ok=False, kind="invalid", message=str(e))
