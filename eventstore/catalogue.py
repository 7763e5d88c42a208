"""The agent vocabulary (docs/events.md): the default ``Catalogue`` of a store, ``AGENTS``.

Events whose type is listed here are validated on append against their Struct;
errors name the exact path (``$.data.tokens_used``). Other types are stored as
given. Optional fields may be absent or null, which mean the same. A store opened with
another catalogue (``EventStore.open(url, catalogue=...)``) knows nothing of these.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from .mapping import Catalogue
from .upcasting import REGISTRY


class _Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    schema_version: ClassVar[int] = 1
    """Bump with an upcaster from the previous version (docs/events.md)."""


Id = Annotated[str, msgspec.Meta(min_length=1)]
"""An identifier or a name that must say something: the empty string is refused (``$.data.session_id``)."""


class SessionStarted(_Event):
    session_id: Id
    name: str | None = None
    task: Id | None = None
    kind: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    settings: dict[str, Any] | None = None
    workspace: Id | None = None


class SessionUpdated(_Event):
    """Edits a session: each field given replaces the session's value (absent or null: unchanged)."""

    session_id: Id
    name: str | None = None
    task: Id | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    settings: dict[str, Any] | None = None
    workspace: Id | None = None


class SessionDeleted(_Event):
    """Soft delete: the session's rows stay (with ``deleted_at``); the log keeps everything."""

    session_id: Id
    reason: str | None = None


class SessionStatusChanged(_Event):
    session_id: Id
    status: Literal["active", "paused", "completed", "failed"]
    reason: str | None = None


class MessageAppended(_Event):
    session_id: Id
    message_id: Id
    role: Literal["user", "assistant", "system", "tool"]
    content: str
    parent_id: Id | None = None
    model: str | None = None
    tokens_used: int | None = None
    finish_reason: str | None = None


class ToolStarted(_Event):
    session_id: Id
    execution_id: Id
    tool_name: Id
    input: Any
    message_id: Id | None = None


class ToolFinished(_Event):
    session_id: Id
    execution_id: Id
    status: Literal["completed", "failed", "timeout"]
    output: Any = None
    error: str | None = None
    duration_ms: float | None = None
    retry_count: int | None = None


class MetricRecorded(_Event):
    metric: Id
    value: float
    session_id: Id | None = None
    stage: Id | None = None
    unit: str | None = None


class SloDefined(_Event):
    slo_id: Id
    metric: Id
    objective: Literal["p50", "p95", "p99", "max", "mean"]
    threshold: float
    severity: str
    stage: Id | None = None
    window: int | None = None


class SubjectErasedEvent(_Event):
    """Appended by ``erase``: the subject's key was destroyed (docs/audit.md, "Erasure")."""

    subject_id: str
    requested_by: str
    reason: str | None = None


class CredentialCreated(_Event):
    """Appended by ``eventstore token create``: who may write what from now on (no secret)."""

    name: str
    role: Literal["appender", "reader", "auditor", "admin"]
    patterns: list[str]
    created_by: str
    expires_at: str | None = None


class CredentialRevoked(_Event):
    """Appended by ``eventstore token revoke``: the credential is refused from now on."""

    name: str
    revoked_by: str


class CheckpointSeen(_Event):
    """A signed checkpoint a restored backup was behind (``origin`` "(auditor state)" for an auditor's)."""

    origin: str
    tree_size: int
    root: str


class StoreRestored(_Event):
    """Appended by ``eventstore restore`` to the restored log: which backup, and any rollback it forced."""

    backup: str
    backup_head_position: int
    forced: bool
    by: str
    backup_head_hash: str | None = None
    reason: str | None = None
    behind: CheckpointSeen | None = None
    behind_note: str | None = None
    replaced_head_position: int | None = None


# workspaces, instances, memory (docs/events.md) ------------------------------------------

Count = Annotated[int, msgspec.Meta(ge=0)]
"""A count of things (files, lines): negative is refused."""

Timestamp = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")]
"""A time in the store's one format (``2026-01-01T00:00:00.000000Z``, as ``recorded_at``), so it
compares with ``recorded_at`` as text."""


class WorkspaceCreated(_Event):
    """A workspace (a project directory agents work in); sessions name it in ``workspace``."""

    workspace_id: Id
    name: Id
    path: str | None = None
    settings: dict[str, Any] | None = None


class WorkspaceUpdated(_Event):
    """Edits a workspace: each field given replaces its value (absent or null: unchanged)."""

    workspace_id: Id
    name: Id | None = None
    path: str | None = None
    settings: dict[str, Any] | None = None


class WorkspaceArchived(_Event):
    """Archives a workspace: its row and its sessions stay (``archived_at``)."""

    workspace_id: Id
    reason: str | None = None


class InstanceStarted(_Event):
    """One agent instance of a session (competition, ensemble, debate) starts its work."""

    session_id: Id
    instance_id: Id
    agent_name: Id
    model: str | None = None
    runtime: Id | None = None
    worktree: str | None = None
    branch: str | None = None


class InstanceFinished(_Event):
    session_id: Id
    instance_id: Id
    status: Literal["completed", "failed", "cancelled"]
    files_changed: Count | None = None
    lines_added: Count | None = None
    lines_removed: Count | None = None
    error: str | None = None


class MemorySet(_Event):
    """An agent's memory entry ``key`` takes ``value`` (any JSON), until ``expires_at`` if given."""

    agent: Id
    key: Id
    value: Any
    expires_at: Timestamp | None = None


class MemoryDeleted(_Event):
    agent: Id
    key: Id
    reason: str | None = None


CATALOGUE: dict[str, type[_Event]] = {
    "session.started": SessionStarted,
    "session.updated": SessionUpdated,
    "session.deleted": SessionDeleted,
    "session.status_changed": SessionStatusChanged,
    "message.appended": MessageAppended,
    "tool.started": ToolStarted,
    "tool.finished": ToolFinished,
    "metric.recorded": MetricRecorded,
    "slo.defined": SloDefined,
    "subject.erased": SubjectErasedEvent,
    "credential.created": CredentialCreated,
    "credential.revoked": CredentialRevoked,
    "store.restored": StoreRestored,
    # workspaces, instances, memory
    "workspace.created": WorkspaceCreated,
    "workspace.updated": WorkspaceUpdated,
    "workspace.archived": WorkspaceArchived,
    "instance.started": InstanceStarted,
    "instance.finished": InstanceFinished,
    "memory.set": MemorySet,
    "memory.deleted": MemoryDeleted,
}

PERSONAL: dict[str, tuple[str, ...]] = {
    "session.started": ("name", "task"),
    "session.updated": ("name", "task"),
    "message.appended": ("content",),
    "tool.started": ("input",),
    "tool.finished": ("output", "error"),
    # workspaces, instances, memory
    "memory.set": ("value",),
}
"""Fields encrypted under the subject's key when an event names a ``subject``."""


AGENTS = Catalogue(CATALOGUE, PERSONAL, REGISTRY)
"""The agent vocabulary as a ``Catalogue``: the default of ``EventStore.open``. Its upcasters
are the process-wide registry's (``eventstore.upcaster``)."""


def validate(type: str, data: dict[str, Any]) -> None:
    """Check ``data`` against the agent catalogue's Struct for ``type`` (if any)."""
    AGENTS.validate(type, data)


def parse(type: str, data: dict[str, Any]) -> _Event | None:
    """Decode a stored agent-catalogue event into its Struct (None for other types)."""
    return AGENTS.parse(type, data)  # type: ignore[return-value]
