"""The two outside parties of a transparency log, with their policy: ``Auditor`` and ``Witness``.

An auditor keeps the newest checkpoint it accepted (a state file) and, each time it is given
a checkpoint, checks its signature (and required witness cosignatures), verifies the log
against it, refuses a rollback (an older checkpoint) and a fork (another root for a size it
knows), and only then remembers it. A witness cosigns a log's checkpoint only if it is
consistent with the newest one it cosigned before (a consistency proof, from the log or
given). These are what ``eventstore verify --checkpoint --state`` and ``eventstore cosign``
run; the CLI only parses, calls and prints.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import UserError, VerificationError
from ..records import Problem, VerifyReport
from . import notes, proofs
from . import state as auditor

if TYPE_CHECKING:
    from ..store import EventStore

StatePath = str | os.PathLike[str]


def _state_of(signed: notes.SignedCheckpoint) -> auditor.AuditorState:
    cp = signed.checkpoint
    return auditor.AuditorState(
        origin=cp.origin, tree_size=cp.size, root=base64.b64encode(cp.root).decode(), checkpoint=signed.format()
    )


def _require_cosigners(witnesses: Sequence[notes.Verifier]) -> tuple[notes.Verifier, ...]:
    for w in witnesses:
        if w.alg != notes.ALG_COSIGNATURE_V1:
            raise UserError(
                f"witness key {w.name!r} is not a cosigner key (keygen --cosigner): a log's own "
                "signature is not a witness's"
            )
    return tuple(witnesses)


class Auditor:
    """Verifies checkpoints against a log and remembers the newest one accepted (``state_path``)."""

    def __init__(
        self, verifier: notes.Verifier, state_path: StatePath | None = None, witnesses: Sequence[notes.Verifier] = ()
    ):
        if verifier.alg != notes.ALG_ED25519:
            raise UserError(f"key {verifier.name!r} is a cosigner key; an auditor needs the log's verifier key")
        self.verifier = verifier
        self.state_path = state_path
        self.witnesses = _require_cosigners(witnesses)

    @property
    def state(self) -> auditor.AuditorState | None:
        """The newest checkpoint this auditor accepted (None before the first)."""
        return auditor.load_state(self.state_path) if self.state_path is not None else None

    def open(self, checkpoint_text: str) -> notes.SignedCheckpoint:
        """Parse a checkpoint and check its signature and the required cosignatures."""
        return notes.open_checkpoint(checkpoint_text, self.verifier, self.witnesses)

    def verify(
        self, store: EventStore, checkpoint_text: str, *, progress: Callable[[int, int], None] | None = None
    ) -> VerifyReport:
        """Check a checkpoint and the log against it and against this auditor's state; on success
        remember it if it is newer. A bad signature is a failed report (kind ``signature``)."""
        try:
            signed = self.open(checkpoint_text)
        except VerificationError as e:
            return VerifyReport(
                ok=False,
                checked=0,
                from_position=1,
                to_position=0,
                head_position=0,
                head_hash=None,
                problem=Problem(position=0, kind="signature", message=str(e)),
            )
        state = self.state
        report = store.verify_checkpoint(signed, state=state, progress=progress)
        if report.ok and self.state_path is not None and (state is None or signed.checkpoint.size >= state.tree_size):
            auditor.save_state(self.state_path, _state_of(signed))
        return report

    def check_proof(self, text: str, checkpoints: Sequence[str] = ()) -> proofs.ProofCheck:
        """Verify any proof the log hands out, offline (``verify-proof``)."""
        return proofs.check_proof_text(text, list(checkpoints), self.verifier, self.witnesses)


class Witness:
    """Cosigns a log's checkpoints (C2SP tlog-cosignature) only when consistent with the newest it cosigned."""

    def __init__(self, signer: notes.Signer, log_verifier: notes.Verifier, state_path: StatePath):
        if signer.alg != notes.ALG_COSIGNATURE_V1:
            raise UserError("a witness signs with a cosigner key (eventstore keygen --cosigner), not a log key")
        self.signer = signer
        self.log_verifier = log_verifier
        self.state_path = state_path

    def cosign(
        self, checkpoint_text: str, *, proof: proofs.ConsistencyProof | None = None, store: EventStore | None = None
    ) -> notes.Note:
        """Check the checkpoint's signature and its consistency with the last one cosigned (``proof``,
        else asked of ``store``), add a cosignature, remember the checkpoint, return the note."""
        signed = notes.open_checkpoint(checkpoint_text, self.log_verifier)
        cp = signed.checkpoint
        state = auditor.load_state(self.state_path)
        if state is not None:
            if state.origin != cp.origin:
                raise UserError(f"the state file is for log {state.origin!r}, not {cp.origin!r}")
            old = notes.open_checkpoint(state.checkpoint, self.log_verifier)
            if cp.size < state.tree_size:
                raise VerificationError(
                    f"refusing to cosign: size {cp.size} is older than the cosigned {state.tree_size}"
                )
            if state.tree_size == cp.size:
                if old.checkpoint.root != cp.root:
                    raise VerificationError("refusing to cosign: same size, different root: the log forked")
            else:
                if proof is None:
                    if store is None:
                        raise UserError(
                            "a consistency proof from the last cosigned checkpoint is needed "
                            "(give one, or a store to ask)"
                        )
                    proof = store.prove_consistency(
                        state.tree_size, cp.size, origin=cp.origin, old_root=old.checkpoint.root, new_root=cp.root
                    )
                proofs.check_consistency(proof, old, signed)
        cosigned = notes.cosign(signed.note, self.signer)
        auditor.save_state(self.state_path, _state_of(signed))
        return cosigned
