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
    execution_id: Id | None = None
    """The ``execution.started`` this observation belongs to (a stage timing of that execution)."""


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
    """A signed checkpoint a restored backup was behind, and who knew it."""

    origin: str
    tree_size: int
    root: str
    known_by: str | None = None
    """``the store`` (its checkpoints table) or ``the auditor state`` (``restore --state``)."""


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


class RetentionPolicySet(_Event):
    """Appended by ``eventstore retention set``: events of ``kind`` ``pattern`` are kept ``keep`` (docs/operations.md)."""

    kind: Literal["streams", "type"]
    pattern: str
    keep: str
    keep_seconds: int
    by: str
    previous_keep: str | None = None


class RetentionPolicyRemoved(_Event):
    """Appended by ``eventstore retention remove``: those events are kept for ever from now on."""

    kind: Literal["streams", "type"]
    pattern: str
    previous_keep: str
    by: str


class RetentionFloorSet(_Event):
    """Appended by ``eventstore retention floor``: the minimum retention any policy may ask for."""

    floor: str
    floor_seconds: int
    previous_floor: str
    by: str


class RetentionPruned(_Event):
    """Appended by ``eventstore prune``: payloads removed, the positions they spanned, per policy."""

    from_position: int | None
    to_position: int | None
    count: int
    policies: dict[str, int]
    by: str
    held: int = 0
    reason: str | None = None
    through: int | None = None
    interrupted: bool = False
    now: str | None = None
    """The time the policies were measured from (the clock, or an earlier ``--now``)."""


class HoldPlaced(_Event):
    """Appended by ``eventstore hold place``: a legal hold on a stream glob or a data subject."""

    hold_id: str
    kind: Literal["streams", "subject"]
    pattern: str
    reason: str
    by: str


class HoldReleased(_Event):
    """Appended by ``eventstore hold release``."""

    hold_id: str
    by: str
    reason: str | None = None


class HoldOverridden(_Event):
    """Appended with a ``subject.erased`` that a legal hold would have refused (``--override-hold``)."""

    hold_id: str
    subject_id: str
    operation: str
    reason: str
    by: str


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
    "retention.policy_set": RetentionPolicySet,
    "retention.policy_removed": RetentionPolicyRemoved,
    "retention.floor_set": RetentionFloorSet,
    "retention.pruned": RetentionPruned,
    "hold.placed": HoldPlaced,
    "hold.released": HoldReleased,
    "hold.overridden": HoldOverridden,
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


# executions, collisions, agents
class ExecutionStarted(_Event):
    """A run of a workflow or pipeline (tier-2 "execution receipt"): the first occurrence wins."""

    execution_id: Id
    workflow: Id
    """The workflow or pipeline run."""
    kind: Literal["workflow", "pipeline"] | None = None
    session_id: Id | None = None
    agent_id: Id | None = None
    """Default: the event's ``metadata.principal``, else ``metadata.agent_id``."""


class ExecutionFinished(_Event):
    """The outcome of an execution: the first occurrence wins."""

    execution_id: Id
    outcome: Literal["succeeded", "failed", "cancelled", "timeout"]
    error: str | None = None
    duration_ms: float | None = None


class CollisionDetected(_Event):
    """Parallel agents collided on a resource (``EventStore.append(..., record_conflicts=True)`` appends
    one of kind ``expected_version`` for a refused append). With a ``collision_id``, the first occurrence wins."""

    resource: Id
    kind: Id
    agents: list[Id] = msgspec.field(default_factory=list)
    session_id: Id | None = None
    resolution: str | None = None
    collision_id: Id | None = None
    stream_id: str | None = None
    expected_version: int | None = None
    actual_version: int | None = None


CATALOGUE.update(
    {
        "execution.started": ExecutionStarted,
        "execution.finished": ExecutionFinished,
        "collision.detected": CollisionDetected,
    }
)
# end of: executions, collisions, agents


AGENTS = Catalogue(CATALOGUE, PERSONAL, REGISTRY)
"""The agent vocabulary as a ``Catalogue``: the default of ``EventStore.open``. Its upcasters
are the process-wide registry's (``eventstore.upcaster``)."""


def validate(type: str, data: dict[str, Any]) -> None:
    """Check ``data`` against the agent catalogue's Struct for ``type`` (if any)."""
    AGENTS.validate(type, data)


def parse(type: str, data: dict[str, Any]) -> _Event | None:
    """Decode a stored agent-catalogue event into its Struct (None for other types)."""
    return AGENTS.parse(type, data)  # type: ignore[return-value]


class ArchiveCreated(_Event):
    """Appended by ``eventstore archive`` (stream ``archives``): which entries an archive file holds
    and the checkpoint it is anchored to (docs/archive.md); ``prune --archived`` reads ``through``."""

    file: str
    sha256: str
    bytes: int
    from_position: int
    through: int
    origin: str
    tree_size: int
    root: str
    by: str


CATALOGUE["archive.created"] = ArchiveCreated
AGENTS.schemas["archive.created"] = ArchiveCreated
AGENTS.registry.set_version("archive.created", ArchiveCreated.schema_version)
