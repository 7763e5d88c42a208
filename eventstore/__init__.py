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
from .records import NewEvent, Problem, Receipt, RecordedEvent, Stats, VerifyReport
from .store import ANY, NO_STREAM, EventStore

__version__ = "0.1.0"

__all__ = [
    "ANY",
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
