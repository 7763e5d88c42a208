"""Settings of ``eventstore serve`` (each has a CLI option; defaults suit one small host)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceConfig:
    max_body_bytes: int = 4 << 20
    """Largest request body; bigger is refused with 413 before it is read to the end."""
    max_events_per_request: int = 1000
    max_pending: int = 1024
    """Append requests queued or committing; beyond it 503 with Retry-After."""
    max_batch_events: int = 5000
    """Most events the writer puts in one commit."""
    writer: str = "queue"
    """'process' (the queue writer in a child process; ``eventstore serve``'s default), 'queue' (one
    writer thread, batches) or 'threads' (a thread hop per request); see writer.py. 'process' falls
    back to 'queue' for a ``:memory:`` database, which another process cannot open."""
    body_timeout: float = 30.0
    """Seconds a client may take to send its body: slow senders cannot hold a slot."""
    retry_after: int = 1
    heartbeat: float = 15.0
    """Seconds between SSE comments on an idle subscription."""
    poll: float = 1.0
    """Longest an idle subscription waits before looking for appends by other processes."""
    idempotency_retention: float = 86400.0
    access_log: bool = True
    max_page: int = 1000
    record_conflicts: bool = False
    """Record each append refused for a wrong expected version (409) as a ``collision.detected``
    in stream ``conflicts``, naming the credential: parallel agents' races become evidence."""
    signing_key: str | None = None
    """A checkpoint signing key file: enables POST /v1/checkpoints (auditor, admin)."""
