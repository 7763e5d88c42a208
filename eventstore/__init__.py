"""eventstore: a tamper-evident, event-sourced audit store for AI-agent systems.

The log's API is here: ``EventStore`` and the records that cross its boundary, the errors,
the hash scheme and schema evolution. Checkpoints, proofs, auditors and witnesses are in
``eventstore.audit``; the ingest service and its client in ``eventstore.service`` and
``eventstore.client``. See README.md and docs/.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    AppendOutcomeUnknown,
    BackendError,
    ConfigurationError,
    DatabaseDamaged,
    DerivedDataDamaged,
    EventStoreError,
    EventTooLarge,
    InvalidEvent,
    MigrationError,
    ReadOnlyStore,
    StoreClosed,
    SubjectErased,
    UpcastError,
    UserError,
    VerificationError,
    WrongExpectedVersion,
)
from .hashing import GENESIS_HASH, HASH_SCHEME, entry_hash
from .mapping import Catalogue
from .records import NewEvent, Problem, Receipt, RecordedEvent, Stats, VerifyReport
from .store import ANY, NO_STREAM, EventStore
from .upcasting import upcaster

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "GENESIS_HASH",
    "HASH_SCHEME",
    "NO_STREAM",
    "AppendOutcomeUnknown",
    "BackendError",
    "Catalogue",
    "ConfigurationError",
    "DatabaseDamaged",
    "DerivedDataDamaged",
    "EventStore",
    "EventStoreError",
    "EventTooLarge",
    "InvalidEvent",
    "MigrationError",
    "NewEvent",
    "Problem",
    "Receipt",
    "ReadOnlyStore",
    "RecordedEvent",
    "Stats",
    "StoreClosed",
    "SubjectErased",
    "UpcastError",
    "UserError",
    "VerificationError",
    "VerifyReport",
    "WrongExpectedVersion",
    "entry_hash",
    "upcaster",
]

_AUDIT_NAMES = frozenset(
    {
        "Checkpoint",
        "ConsistencyProof",
        "EntryHeader",
        "InclusionProof",
        "SignedCheckpoint",
        "Signer",
        "Verifier",
        "check_consistency",
        "check_inclusion",
        "check_tlog_proof",
        "cosign",
        "open_checkpoint",
        "verify_consistency",
        "verify_inclusion",
    }
)
"""Audit names this package exported before they moved to ``eventstore.audit``; still importable from here."""


def __getattr__(name: str) -> Any:
    if name in _AUDIT_NAMES:
        from . import audit

        return getattr(audit, name)
    raise AttributeError(f"module 'eventstore' has no attribute {name!r}")
