"""Storage backends: one module per database, behind the small interface of ``base``.

``open_backend`` picks one by the URL scheme; each backend module is imported only when its
database is asked for (psycopg is an optional dependency).
"""

from __future__ import annotations

from typing import Any, Literal

from ..errors import ConfigurationError
from .base import Backend


def open_backend(
    url: str,
    *,
    durability: Literal["full", "process"] = "full",
    create: bool = True,
    readonly: bool = False,
    **options: Any,
) -> Backend:
    """Pick the backend from the URL scheme (``postgresql://`` or a SQLite path/URL).

    ``readonly=True``: never create, change or migrate the database (SQLite opens it with
    ``mode=ro``); an unknown path is a ConfigurationError.
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresBackend
        except ImportError as e:  # psycopg not installed
            raise ConfigurationError(
                f"PostgreSQL support needs psycopg: pip install 'eventstore-audit[postgres]' ({e})"
            ) from None
        sqlite_only = [k for k in ("cache_size", "mmap_size") if options.pop(k, None) is not None]
        if sqlite_only:
            raise ConfigurationError(f"{', '.join(sqlite_only)}: SQLite options, not PostgreSQL's")
        backend: Backend = PostgresBackend(url, durability=durability, readonly=readonly, **options)
        backend.options = dict(options)
        return backend
    if "://" in url and not url.startswith("sqlite://"):
        raise ConfigurationError(f"unsupported database URL {url!r}: use a path, sqlite:///path or postgresql://...")
    from .sqlite import SQLiteBackend

    backend = SQLiteBackend(url, durability=durability, create=create, readonly=readonly, **options)
    backend.options = dict(options)  # what another process needs to open the same store the same way
    return backend


__all__ = ["Backend", "open_backend"]
