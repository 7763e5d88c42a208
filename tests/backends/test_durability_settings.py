"""The writer's durability settings are what ``durability`` promises, on the connection that
appends (not a reader's), and a COMMIT the server refuses never yields a receipt."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import BackendError, EventStore, NewEvent


def ev(i: int = 0) -> NewEvent:
    return NewEvent(type="thing.happened", data={"i": i})


@pytest.mark.parametrize(("durability", "expected"), [("full", 2), ("process", 1)])
def test_sqlite_write_connection_synchronous(tmp_path: Path, durability: str, expected: int) -> None:
    with EventStore.open(str(tmp_path / "d.db"), durability=durability) as store:  # type: ignore[arg-type]
        store.append("a", [ev()])
        conn = store.backend._wconn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == expected  # FULL = 2, NORMAL = 1


def _pg_url(request: pytest.FixtureRequest) -> str:
    from tests import pg_cluster

    return pg_cluster.fresh_database_url(request)


@pytest.mark.parametrize(("durability", "expected"), [("full", "on"), ("process", "off")])
def test_postgres_appending_connection_synchronous_commit(
    request: pytest.FixtureRequest, durability: str, expected: str
) -> None:
    with EventStore.open(_pg_url(request), durability=durability) as store:  # type: ignore[arg-type]
        store.append("a", [ev()])
        conn = store.backend._wconn  # type: ignore[attr-defined]
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == expected
        assert conn.execute("SHOW lock_timeout").fetchone()[0] == "5s"  # the default bound on waiting to append


def test_postgres_timeouts_are_options_of_open(request: pytest.FixtureRequest) -> None:
    with EventStore.open(_pg_url(request), lock_timeout=0.25, statement_timeout=7) as store:
        conn = store.backend._wconn  # type: ignore[attr-defined]
        assert conn.execute("SHOW lock_timeout").fetchone()[0] == "250ms"
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "7s"
    from eventstore import ConfigurationError

    with pytest.raises(ConfigurationError, match="lock_timeout"):
        EventStore.open(_pg_url(request), lock_timeout=-1)


@pytest.mark.parametrize("size", [1, 100])  # pipelined INSERTs, and COPY
def test_postgres_failed_commit_yields_no_receipt(request: pytest.FixtureRequest, size: int) -> None:
    url = _pg_url(request)
    with EventStore.open(url) as store:
        store.append("a", [ev()])
        with store.backend.transaction() as tx:  # fails every append at COMMIT, after the inserts
            tx.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected commit failure'; END $$"
            )
            tx.execute(
                "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        for _ in range(2):
            with pytest.raises(BackendError, match="nothing was written.*injected commit failure"):
                store.append("b", [ev(i) for i in range(size)])
        assert store.head()[0] == 1 and store.stream_version("b") == 0 and store.verify().ok
        with store.backend.transaction() as tx:
            tx.execute("DROP TRIGGER refuse_at_commit ON events")
        receipts = store.append("b", [ev(i) for i in range(size)], expected_version=0)
        assert receipts[0].position == 2 and all(store.verify_receipt(r).ok for r in receipts)
