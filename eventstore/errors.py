"""One exception hierarchy: every error the store raises derives from EventStoreError.

The CLI maps ``UserError`` subclasses to exit status 2 with a one-line message, so
each message names what was wrong and where, and never needs a traceback.
"""

from __future__ import annotations


def _rebuild(cls: type[BaseException], args: tuple[object, ...], state: dict[str, object]) -> BaseException:
    """Unpickle an error without calling its ``__init__`` (whose signature may differ from ``args``)."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class EventStoreError(Exception):
    """Base class of every error raised by eventstore.

    Every subclass pickles (for multiprocessing, e.g. the demo's agent processes),
    whatever its ``__init__`` takes: the default pickling would call
    ``cls(*self.args)``, which fails for ``WrongExpectedVersion(stream_id, ...)``
    and leaves a ``multiprocessing.Pool`` waiting forever for the result.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild, (type(self), self.args, self.__dict__)


class UserError(EventStoreError):
    """Bad input or a bad request: the caller can fix it; nothing was written."""


class InvalidEvent(UserError):
    """An event (or a JSON Lines record) is malformed; the message names the path."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if line is not None:
            where += f"line {line}: "
        if path is not None and path not in message:
            where += f"at {path}: "
        super().__init__(where + message)


class EventTooLarge(InvalidEvent):
    """An encoded event exceeds the configured size limit."""


class WrongExpectedVersion(UserError):
    """The stream was not at the version the caller expected; nothing was written."""

    def __init__(self, stream_id: str, expected: int, actual: int):
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"wrong expected version for stream {stream_id!r}: expected {expected}, actual {actual}")


class EventIdConflict(UserError):
    """An event id the stream already holds was sent with another event (or with new ones)."""


class ConfigurationError(UserError):
    """A bad database URL, option or file given by the user."""


class MigrationError(EventStoreError):
    """A migration cannot be applied or rolled back as asked."""


class StoreClosed(EventStoreError):
    """The store was used after ``close()``."""


class BackendError(EventStoreError):
    """The database failed in a way the store could not recover from."""


class ReadOnlyStore(UserError, BackendError):
    """A write on a store opened with ``readonly=True``: refused before anything is written.

    A ``BackendError`` too, as read-only refusals were before it existed (callers catching that still do)."""


class VerificationError(EventStoreError):
    """A proof, receipt, signature or checkpoint did not verify."""


class DerivedDataDamaged(EventStoreError):
    """Data derived from the log (the stored Merkle tree) does not match the log's entries.

    Nothing was signed or handed out; ``eventstore audit repair`` rebuilds it from the log.
    """


class DatabaseDamaged(BackendError):
    """Stored bytes cannot be read back (a corrupt page, a value of an undecodable type).

    ``verify`` turns it into a failed report naming the first unreadable position;
    ``page`` is the damaged database page when the database could name one.
    """

    def __init__(self, message: str, *, page: int | None = None):
        self.page = page
        super().__init__(message)


class AppendOutcomeUnknown(BackendError):
    """The connection broke while an append was committing and the store could not tell
    whether it committed. The message names the positions and the last hash to look for;
    retry only after checking that the log does not have them."""

    def __init__(self, message: str, *, first_position: int, last_position: int, last_hash: str):
        self.first_position = first_position
        self.last_position = last_position
        self.last_hash = last_hash
        super().__init__(message)


class NoteFormatError(UserError):
    """A note, checkpoint or key file is malformed; the message says which part."""


class UpcastError(EventStoreError):
    """A stored event cannot be brought to its type's current schema version."""


class SubjectErased(UserError):
    """A subject's key was destroyed: no new personal data can be written for it."""


class LeaseLost(EventStoreError):
    """Another worker owns the projection now, or the batch overran its time; it was rolled back."""


class ServiceError(EventStoreError):
    """The service failed or could not be reached (after the retries)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        self.status = status
        self.code = code
        super().__init__(message)


class Unauthorized(UserError):
    """401: no credential, or a wrong, revoked or expired one."""


class Forbidden(UserError):
    """403: the credential's role or stream patterns do not allow this."""


class Overloaded(EventStoreError):
    """The write queue is full: retry later (503, Retry-After)."""


class ShuttingDown(EventStoreError):
    """The service is stopping and accepts no more appends (503)."""


class WriterExited(EventStoreError):
    """The service's writer process exited while a request was queued or committing (503).

    Whether that request committed is unknown: retry it with the same event ids or
    Idempotency-Key, which makes the retry safe (the original receipts come back)."""


class CredentialRefused(EventStoreError):
    """The request's credential was revoked or expired before its commit (401); nothing was written."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(
            {"revoked": "the credential was revoked", "expired": "the credential has expired"}.get(
                reason, "the credential is not valid"
            )
        )


class LegalHoldActive(UserError):
    """A legal hold covers the target: its erasure is refused (eventstore.holds)."""


class RetentionFloorError(UserError):
    """A retention policy shorter than the store's minimum retention floor (eventstore.retention)."""
