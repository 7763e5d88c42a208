"""Event schema evolution: upcasters turn stored older versions into the current one on read.

Stored bytes never change. Each event records the schema version it was written
with in ``metadata["schema_version"]`` (absent means 1). On read, the registered
chain of small pure functions ``data -> data`` runs from that version up to the
type's current version, in ``read_stream``, ``read_all`` and projections alike.
See docs/events.md, "Evolving an event type".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from .errors import UpcastError  # noqa: F401  (defined in eventstore.errors, the one hierarchy)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

SCHEMA_VERSION_KEY = "schema_version"


class Registry:
    """Current schema versions per type, and the upcasters between versions."""

    def __init__(self) -> None:
        self.current: dict[str, int] = {}
        """Read-only outside this class: change it with ``set_version`` (``evolved`` is cached)."""
        self._steps: dict[tuple[str, int], Upcaster] = {}
        self._evolved = False

    def snapshot(self) -> Registry:
        """A copy of the versions and upcasters (``restore`` puts them back; for tests and tools)."""
        copy = Registry()
        copy.current, copy._steps, copy._evolved = dict(self.current), dict(self._steps), self._evolved
        return copy

    def restore(self, snapshot: Registry) -> None:
        self.current, self._steps = dict(snapshot.current), dict(snapshot._steps)
        self._evolved = any(v > 1 for v in self.current.values())

    def set_version(self, type: str, version: int) -> None:
        if version < 1:
            raise ValueError("schema versions start at 1")
        self.current[type] = version
        self._evolved = any(v > 1 for v in self.current.values())

    @property
    def evolved(self) -> bool:
        """True once any type is past version 1 (reads skip upcasting until then). Asked once per
        event read, so it is kept up to date by ``set_version`` rather than computed."""
        return self._evolved

    def register(self, type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: ``fn`` turns ``type`` data of ``from_version`` into ``from_version + 1``."""

        def add(fn: Upcaster) -> Upcaster:
            self._steps[(type, from_version)] = fn
            return fn

        return add

    def version_of(self, type: str) -> int:
        return self.current.get(type, 1)

    def upcast(self, type: str, version: int, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Bring ``data`` from ``version`` to the current version of ``type``."""
        target = self.current.get(type, version)
        if version > target:
            raise UpcastError(
                f"{type!r} event has schema version {version}, newer than this "
                f"eventstore knows ({target}); upgrade eventstore"
            )
        while version < target:
            step = self._steps.get((type, version))
            if step is None:
                raise UpcastError(f"no upcaster registered for {type!r} from schema version {version} to {version + 1}")
            try:
                data = step(dict(data))
            except Exception as e:  # an upcaster bug must name the event type and version
                raise UpcastError(f"upcaster for {type!r} v{version}->v{version + 1} failed: {e}") from None
            version += 1
        return data, version


def stored_version(metadata: Any) -> int:
    """The schema version an event was written with (1 when not recorded)."""
    if isinstance(metadata, dict):
        v = metadata.get(SCHEMA_VERSION_KEY)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            return v
    return 1


REGISTRY = Registry()
"""The process-wide registry: the catalogue registers its types' versions and upcasters here."""


def upcaster(type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register an upcaster in the process-wide registry."""
    return REGISTRY.register(type, from_version)


def check_struct(type: str, data: dict[str, Any], schema: type[msgspec.Struct] | None) -> str | None:
    """Validate upcast data against the current Struct; return an error message or None."""
    if schema is None:
        return None
    try:
        msgspec.convert(data, schema)
    except msgspec.ValidationError as e:
        return str(e).replace("`$", "`$.data")
    return None


class EventProblem(msgspec.Struct, frozen=True, kw_only=True):
    """A stored event that cannot be read as its type's current version."""

    position: int
    type: str
    schema_version: int
    error: str


class EventsCheckReport(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of ``eventstore events check``."""

    ok: bool
    checked: int
    problems: list[EventProblem]
