"""Shared fixtures. ``backend_url`` runs a test on every backend (the contract suite).

PostgreSQL: ``EVENTSTORE_TEST_PG`` names a server; otherwise tests/pg_cluster.py
starts a throwaway cluster when the server binaries exist; otherwise the
PostgreSQL variants skip with a reason, or fail with ``EVENTSTORE_REQUIRE_PG=1`` (CI sets it,
so a CI machine without PostgreSQL cannot pass by skipping half the suite).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstore import EventStore

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "events.db")
    try:
        from tests import pg_cluster
    except ImportError as e:
        reason = f"PostgreSQL test support (tests/pg_cluster.py) is not available: {e}"
        if os.environ.get("EVENTSTORE_REQUIRE_PG", "") not in ("", "0"):
            pytest.fail(f"EVENTSTORE_REQUIRE_PG is set and {reason}", pytrace=False)
        pytest.skip(reason)
    return pg_cluster.fresh_database_url(request)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "events.db")


@pytest.fixture
def store(backend_url: str) -> Iterator[EventStore]:
    with EventStore.open(backend_url) as s:
        yield s


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[EventStore]:
    with EventStore.open(sqlite_url) as s:
        yield s
