"""Installed extensions: event types, upcasters and read models that a package ships.

A package registers them under entry point groups (docs/extending.md); every process that opens
a store (the CLI, the service, a script) then uses them, not only one that imported them:

* ``eventstore.catalogue``: a ``Catalogue`` (or a callable returning one): its Structs
  validate appends, its personal fields are encrypted, its schema versions and upcasters apply
  on read. It may not redefine a type the agent catalogue or another plugin defines.
* ``eventstore.upcasters``: a callable ``register(registry)`` given the combined catalogue's
  ``upcasting.Registry`` (or a module whose import registers with ``eventstore.upcaster``).
* ``eventstore.projections``: a ``projections.Projection`` subclass or instance (or a callable
  returning a list of them): ``project run``, ``project rebuild --all``, ``project status``
  and ``Runner(store)`` include it. Its ``ddl`` is its migration (see docs/extending.md).

``EVENTSTORE_NO_PLUGINS=1`` turns every entry point off (to open a store whose plugin is
broken). A plugin that fails to load is a ConfigurationError naming its entry point.
"""

from __future__ import annotations

import functools
import os
from importlib import metadata
from typing import Any

from .catalogue import AGENTS
from .errors import ConfigurationError
from .mapping import Catalogue
from .upcasting import Registry

CATALOGUE_GROUP = "eventstore.catalogue"
UPCASTERS_GROUP = "eventstore.upcasters"
PROJECTIONS_GROUP = "eventstore.projections"
DISABLE_ENV = "EVENTSTORE_NO_PLUGINS"


def _enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "") in ("", "0")


def load(group: str) -> list[tuple[str, Any]]:
    """(``name = value`` of the entry point, loaded object) for every entry point of ``group``,
    sorted by name so that every process loads them in the same order."""
    if not _enabled():
        return []
    out = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value)):
        try:
            out.append((f"{ep.name} = {ep.value}", ep.load()))
        except Exception as e:
            raise ConfigurationError(
                f"plugin entry point '{ep.name} = {ep.value}' (group {group}) failed to load: "
                f"{type(e).__name__}: {e} (set {DISABLE_ENV}=1 to open the store without plugins)"
            ) from None
    return out


def _called(where: str, value: Any, group: str) -> Any:
    if callable(value) and not isinstance(value, type):
        try:
            return value()
        except Exception as e:
            raise ConfigurationError(
                f"plugin entry point '{where}' (group {group}) failed: {type(e).__name__}: {e}"
            ) from None
    return value


@functools.cache
def catalogue() -> Catalogue:
    """The agent catalogue extended by the installed plugins (``AGENTS`` itself when none is
    installed); ``EventStore.open`` uses it when given no catalogue. Loaded once per process
    (``reload()`` forgets it)."""
    extra = load(CATALOGUE_GROUP)
    upcasters = load(UPCASTERS_GROUP)
    if not extra and not upcasters:
        return AGENTS
    schemas = dict(AGENTS.schemas)
    personal = dict(AGENTS.personal)
    registry = Registry()
    registry.restore(AGENTS.registry)  # a copy: the process-wide registry is not changed
    owner = dict.fromkeys(schemas, "the agent catalogue")
    for where, value in extra:
        cat = _called(where, value, CATALOGUE_GROUP)
        if not isinstance(cat, Catalogue):
            raise ConfigurationError(
                f"plugin entry point '{where}' (group {CATALOGUE_GROUP}) is a {type(cat).__name__}, not a Catalogue"
            )
        for t in cat.schemas:
            if t in owner:
                raise ConfigurationError(f"plugin entry point '{where}' redefines event type {t!r} of {owner[t]}")
            owner[t] = f"'{where}'"
        schemas.update(cat.schemas)
        personal.update(cat.personal)
        for t, v in cat.registry.current.items():
            registry.set_version(t, v)
        registry._steps.update(cat.registry._steps)  # the registries' only merge: same module family
    combined = Catalogue(schemas, personal, registry)
    for where, value in upcasters:
        if callable(value):
            try:
                value(combined.registry)
            except Exception as e:
                raise ConfigurationError(
                    f"plugin entry point '{where}' (group {UPCASTERS_GROUP}) failed: {type(e).__name__}: {e}"
                ) from None
    return combined


def projections() -> list[Any]:
    """The installed read models' objects as loaded (``projections.installed`` checks their type)."""
    out = []
    for where, value in load(PROJECTIONS_GROUP):
        made = value() if isinstance(value, type) else _called(where, value, PROJECTIONS_GROUP)
        for p in made if isinstance(made, (list, tuple)) else [made]:
            out.append((where, p))
    return out


def reload() -> None:
    """Forget the loaded plugins: the next ``catalogue()`` looks at the entry points again."""
    catalogue.cache_clear()
