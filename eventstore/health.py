"""``EventStore.health()``: one cheap answer to "can this store be used now?".

What a load balancer's or an orchestrator's health probe asks (``eventstore health`` exits 0 or 1
on it). Every check is a few indexed reads: the head, the applied migrations and the projection
checkpoints; nothing is verified, written or scanned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .errors import EventStoreError

if TYPE_CHECKING:
    from .store import EventStore


class Health(msgspec.Struct, kw_only=True):
    """The store's health. ``ok``: reachable, schema current, appends accepted unless opened
    read-only, and no read model stopped (failed, or ahead of the log)."""

    ok: bool
    backend: str
    reachable: bool
    readonly: bool
    """Opened with ``readonly=True``: this handle refuses writes by design."""
    writable: bool
    """The database would accept appends through a read-write open (SQLite: this process may write
    the file and its directory; PostgreSQL: a primary, and the role may insert into ``events``)."""
    schema_version: int
    schema_latest: int
    """The newest migration this version of eventstore knows."""
    schema_current: bool
    head_position: int
    projection_lag: dict[str, int] = {}
    """Events each read model's active generation is behind the head (``project status`` has more)."""
    max_projection_lag: int | None = None
    problems: list[str] = []
    """One line per failed check, empty when ``ok``."""


def check(store: EventStore, *, max_lag: int | None = None, require_writable: bool | None = None) -> Health:
    """Run the checks; database errors become problems of the answer, never exceptions.

    ``max_lag``: a read model more than this many events behind the head is a problem too
    (default: lag is reported, not judged). ``require_writable``: a database that would refuse
    appends is a problem (default: unless the store was opened read-only).
    """
    from .migrate import load_migrations

    backend = store.backend
    problems: list[str] = []
    try:
        head = backend.head()[0]
        applied = backend.applied_migrations()
    except EventStoreError as e:
        return Health(
            ok=False,
            backend=backend.dialect,
            reachable=False,
            readonly=backend.readonly,
            writable=False,
            schema_version=0,
            schema_latest=0,
            schema_current=False,
            head_position=0,
            problems=[f"database unreachable: {e}"],
        )
    version = max((a.version for a in applied), default=0)
    try:
        latest = max((m.version for m in load_migrations(backend.dialect)), default=0)
    except EventStoreError as e:
        latest = version
        problems.append(str(e))
    if version < latest:
        problems.append(f"schema version {version} is behind {latest}: run 'eventstore migrate up'")
    elif version > latest:
        problems.append(f"schema version {version} is newer than this eventstore knows ({latest}): upgrade it")
    try:
        writable = backend.writable()
    except EventStoreError as e:
        writable = False
        problems.append(f"cannot tell whether appends are accepted: {e}")
    if require_writable is None:
        require_writable = not backend.readonly
    if not writable and require_writable:
        problems.append("the database does not accept appends (read-only file, standby, or a role without INSERT)")
    lag: dict[str, int] = {}
    try:
        rows = backend.query("SELECT name, position, state FROM projection_state WHERE active = 1 ORDER BY name")
    except EventStoreError:
        rows = []  # no read models yet
    for name, position, state in rows:
        lag[name] = max(0, head - position)
        if state in ("failed", "ahead") or position > head:
            problems.append(f"read model {name} stopped ({state}): see 'eventstore project status'")
        elif max_lag is not None and lag[name] > max_lag:
            problems.append(f"read model {name} is {lag[name]} events behind (more than {max_lag})")
    return Health(
        ok=not problems,
        backend=backend.dialect,
        reachable=True,
        readonly=backend.readonly,
        writable=writable,
        schema_version=version,
        schema_latest=latest,
        schema_current=version == latest,
        head_position=head,
        projection_lag=lag,
        max_projection_lag=max(lag.values(), default=None),
        problems=problems,
    )


def unreachable(backend: str, error: str) -> Health:
    """The answer when the store could not even be opened (``eventstore health``)."""
    return Health(
        ok=False,
        backend=backend,
        reachable=False,
        readonly=False,
        writable=False,
        schema_version=0,
        schema_latest=0,
        schema_current=False,
        head_position=0,
        problems=[error],
    )
