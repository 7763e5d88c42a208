"""The shipped backend conformance suite (eventstore.testing.backend_contract), once per backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore.testing.backend_contract import BackendContract


class TestSQLite(BackendContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return str(tmp_path / "events.db")


@pytest.mark.postgres
class TestPostgres(BackendContract):
    @pytest.fixture
    def url(self, request: pytest.FixtureRequest) -> str:
        from tests import pg_cluster

        return pg_cluster.fresh_database_url(request)
