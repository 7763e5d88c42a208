"""The test harness itself: CI must not pass by skipping the PostgreSQL half of the suite."""

from __future__ import annotations

import pytest

from tests import pg_cluster


@pytest.mark.parametrize("value", ["1", "yes"])
def test_require_pg_turns_a_missing_server_into_a_failure(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("EVENTSTORE_REQUIRE_PG", value)
    with pytest.raises(pytest.fail.Exception, match="EVENTSTORE_REQUIRE_PG is set and no server here"):
        pg_cluster.missing("no server here")


@pytest.mark.parametrize("value", [None, "", "0"])
def test_without_require_pg_a_missing_server_skips(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("EVENTSTORE_REQUIRE_PG", raising=False)
    else:
        monkeypatch.setenv("EVENTSTORE_REQUIRE_PG", value)
    with pytest.raises(pytest.skip.Exception, match="no server here"):
        pg_cluster.missing("no server here")
