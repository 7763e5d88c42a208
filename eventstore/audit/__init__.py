"""The transparency log over the event log (docs/audit.md): one module per concern.

* ``merkle``: RFC 6962/9162 tree hashing, proofs and their verification (pure), and the
  stored tree, a cache behind the backend's ``merkle_nodes`` table.
* ``notes``: C2SP signed notes, checkpoints, Ed25519 keys and cosignatures (pure).
* ``proofs``: the proof formats an auditor checks offline, and their checks (pure).
* ``log``: ``TransparencyLog`` over a store: roots, checkpoints and proofs derived from the
  entries, never from stored nodes alone.
* ``state``: an auditor's or witness's memory (the state file).
* ``parties``: ``Auditor`` and ``Witness``, the policy of ``verify --state`` and ``cosign``.

Imports point down only: this package uses the log (``eventstore.store``), never the reverse.
"""

from .log import TransparencyLog, TreeProblem, TreeReport
from .merkle import verify_consistency, verify_inclusion
from .notes import Checkpoint, SignedCheckpoint, Signer, Verifier, cosign, open_checkpoint
from .parties import Auditor, Witness
from .proofs import (
    ConsistencyProof,
    EntryHeader,
    InclusionProof,
    ProofCheck,
    check_consistency,
    check_inclusion,
    check_proof_text,
    check_tlog_proof,
)
from .state import AuditorState, load_state, save_state

__all__ = [
    "Auditor",
    "AuditorState",
    "Checkpoint",
    "ConsistencyProof",
    "EntryHeader",
    "InclusionProof",
    "ProofCheck",
    "SignedCheckpoint",
    "Signer",
    "TransparencyLog",
    "TreeProblem",
    "TreeReport",
    "Verifier",
    "Witness",
    "check_consistency",
    "check_inclusion",
    "check_proof_text",
    "check_tlog_proof",
    "cosign",
    "load_state",
    "open_checkpoint",
    "save_state",
    "verify_consistency",
    "verify_inclusion",
]
