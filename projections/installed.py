"""Read models installed by packages (entry point group ``eventstore.projections``; docs/extending.md)."""

from __future__ import annotations

from eventstore import plugins
from eventstore.errors import ConfigurationError

from .base import Projection


def installed_projections(builtin: list[Projection]) -> list[Projection]:
    """The installed read models, checked: each a Projection whose name and tables no other
    read model (built-in or installed) has, so that none can replace another's tables."""
    taken = {p.name: "a built-in read model" for p in builtin}
    tables = {t: p.name for p in builtin for t in p.tables}
    out: list[Projection] = []
    for where, p in plugins.projections():
        if not isinstance(p, Projection):
            raise ConfigurationError(
                f"plugin entry point '{where}' (group {plugins.PROJECTIONS_GROUP}) gave a {type(p).__name__}, "
                "not a projections.Projection"
            )
        if p.name in taken:
            raise ConfigurationError(
                f"plugin entry point '{where}': read model name {p.name!r} is taken by {taken[p.name]}"
            )
        clash = [t for t in p.tables if t in tables]
        if clash:
            raise ConfigurationError(
                f"plugin entry point '{where}': table {clash[0]!r} belongs to read model {tables[clash[0]]!r}"
            )
        taken[p.name] = f"'{where}'"
        tables.update(dict.fromkeys(p.tables, p.name))
        out.append(p)
    return out
