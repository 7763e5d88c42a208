"""eventstore: a tamper-evident, event-sourced audit store for AI-agent systems.

The public API is re-exported here; see README.md and docs/.
"""

from .errors import (
    BackendError,
    ConfigurationError,
    EventStoreError,
    EventTooLarge,
    InvalidEvent,
    MigrationError,
    StoreClosed,
    UserError,
    VerificationError,
    WrongExpectedVersion,
)
from .hashing import GENESIS_HASH, HASH_SCHEME, entry_hash
from .audit.merkle import verify_consistency, verify_inclusion
from .audit.notes import Checkpoint, SignedCheckpoint, Signer, Verifier, cosign, open_checkpoint
from .audit.proofs import (
    ConsistencyProof,
    EntryHeader,
    InclusionProof,
    check_consistency,
    check_inclusion,
    check_tlog_proof,
)
from .records import NewEvent, Problem, Receipt, RecordedEvent, Stats, VerifyReport
from .errors import SubjectErased
from .store import ANY, NO_STREAM, EventStore
from .upcasting import UpcastError, upcaster

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "Checkpoint",
    "ConsistencyProof",
    "EntryHeader",
    "InclusionProof",
    "SignedCheckpoint",
    "Signer",
    "SubjectErased",
    "UpcastError",
    "Verifier",
    "check_consistency",
    "check_inclusion",
    "check_tlog_proof",
    "cosign",
    "open_checkpoint",
    "upcaster",
    "verify_consistency",
    "verify_inclusion",
    "NO_STREAM",
    "GENESIS_HASH",
    "HASH_SCHEME",
    "BackendError",
    "ConfigurationError",
    "EventStore",
    "EventStoreError",
    "EventTooLarge",
    "InvalidEvent",
    "MigrationError",
    "NewEvent",
    "Problem",
    "Receipt",
    "RecordedEvent",
    "Stats",
    "StoreClosed",
    "UserError",
    "VerificationError",
    "VerifyReport",
    "WrongExpectedVersion",
    "entry_hash",
]
