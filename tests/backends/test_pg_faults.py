"""PostgreSQL under faults: commits cut in transit, server restarts and crashes, a server that
is down, a held append lock. Each test has a cluster of its module's own (tests/pg_dedicated.py)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from eventstore import BackendError, EventStore, NewEvent
from eventstore.errors import AppendOutcomeUnknown
from tests.pg_dedicated import Cluster, Proxy, cluster  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
_names = itertools.count()


def ev(i: int = 0) -> NewEvent:
    return NewEvent(type="thing.happened", data={"i": i})


@pytest.fixture
def db(cluster: Cluster) -> str:  # noqa: F811
    return cluster.create_database(f"f{next(_names)}")


@pytest.fixture
def proxied(cluster: Cluster, db: str) -> Iterator[tuple[Proxy, str]]:  # noqa: F811
    EventStore.open(db).close()  # migrate directly
    proxy = Proxy(cluster.port)
    yield proxy, db.replace(f":{cluster.port}/", f":{proxy.port}/")
    proxy.close()


def count(url: str) -> int:
    with psycopg.connect(url) as c:
        return c.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]


# -- a commit cut in transit ---------------------------------------------------------------------
def test_commit_whose_reply_is_lost_returns_the_receipts_it_earned(proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    with EventStore.open(url, reconnect_timeout=3.0) as store:
        store.append("a", [ev(0)])
        proxy.cut = "after_commit"
        receipts = store.append("a", [ev(1), ev(2)])  # committed; the reply never arrived
        assert proxy.cuts == 1
        assert [r.position for r in receipts] == [2, 3]
        assert all(store.verify_receipt(r).ok for r in receipts)
        assert store.head()[0] == 3 and store.verify().ok  # written once, not twice
        assert store.append("a", [ev(3)], expected_version=3)[0].position == 4  # and the store carries on


def test_commit_that_never_reached_the_server_says_nothing_was_written(proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    with EventStore.open(url, reconnect_timeout=3.0) as store:
        store.append("a", [ev(0)])
        proxy.cut = "before_commit"
        with pytest.raises(BackendError, match="nothing was written") as e:
            store.append("a", [ev(1)])
        assert not isinstance(e.value, AppendOutcomeUnknown) and proxy.cuts == 1
        assert store.head()[0] == 1
        assert store.append("a", [ev(1)], expected_version=1)[0].position == 2  # the retry is safe


def test_commit_outcome_that_cannot_be_checked_is_reported_unknown(proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    with EventStore.open(url, reconnect_timeout=0.5) as store:
        store.append("a", [ev(0)])
        proxy.cut = "after_commit"
        proxy.refuse = True  # the server looks down once the reply is lost
        with pytest.raises(AppendOutcomeUnknown, match="outcome is unknown") as e:
            store.append("a", [ev(1), ev(2)])
        err = e.value
        assert (err.first_position, err.last_position) == (2, 3)
        assert "position 3" in str(err) and err.last_hash in str(err)
        proxy.refuse = False
        row = store.backend.row_at(3)  # it did commit: the hash the error named is there
        assert row is not None and row.hash.hex() == err.last_hash
        assert store.append("a", [ev(3)], expected_version=3)[0].position == 4


def test_big_batch_commit_reply_lost_is_resolved_too(proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    with EventStore.open(url, reconnect_timeout=3.0) as store:
        proxy.cut = "after_commit"
        receipts = store.append("a", [ev(i) for i in range(200)])  # COPY, then COMMIT
        assert proxy.cuts == 1 and len(receipts) == 200 and store.head()[0] == 200 and store.verify().ok


# -- restarts and a server that is down -----------------------------------------------------------
def test_appends_and_reads_recover_after_a_server_crash_and_restart(cluster: Cluster, db: str) -> None:  # noqa: F811
    with EventStore.open(db) as store:
        store.append("a", [ev(0)])
        assert store.head()[0] == 1
        cluster.restart("immediate")
        assert store.append("a", [ev(1)])[0].position == 2  # no process restart needed
        assert store.head()[0] == 2 and [e.version for e in store.read_stream("a")] == [1, 2]
        cluster.restart("fast")
        assert store.stream_version("a") == 2  # a read first, this time
        assert store.append("a", [ev(2)])[0].position == 3 and store.verify().ok


def test_while_the_server_is_down_appends_fail_clearly_then_recover(cluster: Cluster, db: str) -> None:  # noqa: F811
    url = db.replace("postgres@", "postgres:s3cret-pw@")  # trust auth ignores it; it must not leak
    with EventStore.open(url, reconnect_timeout=1.0) as store:
        store.append("a", [ev(0)])
        cluster.stop("fast")
        try:
            t = time.monotonic()
            with pytest.raises(BackendError) as e:
                store.append("a", [ev(1)])
            took = time.monotonic() - t
            msg = str(e.value)
            assert f"127.0.0.1:{cluster.port}/" in msg and "s3cret" not in msg
            assert "nothing was written" in msg or "cannot reach" in msg
            assert took < 5.0  # bounded by reconnect_timeout, not hanging
            with pytest.raises(BackendError, match="cannot reach"):
                store.head()
            store.backend.wait_for_append(1, 0.3)  # waits out its timeout, no raw psycopg error
        finally:
            cluster.start()
        assert store.append("a", [ev(1)])[0].position == 2
        assert store.head()[0] == 2


def test_follow_survives_a_server_restart(cluster: Cluster, db: str) -> None:  # noqa: F811
    from projections import Runner

    with EventStore.open(db) as store:
        runner = Runner(store)
        stop = threading.Event()
        errors: list[BaseException] = []

        def follow() -> None:
            try:
                runner.follow(stop, poll=30)  # so that the restart finds it waiting on LISTEN
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        msg = {"session_id": "s", "role": "user", "content": "hi"}
        store.append("s", [NewEvent(type="message.appended", data={**msg, "message_id": "m0"})])
        t = threading.Thread(target=follow)
        t.start()
        try:
            deadline = time.monotonic() + 10
            while store.backend.query("SELECT position FROM projection_state WHERE name = 'messages'") != [(1,)]:
                assert time.monotonic() < deadline and not errors, errors
                time.sleep(0.05)
            time.sleep(0.2)
            # A transaction in flight during a restart fails (BackendError): the runner's follow loop
            # has to retry those itself. Waiting for appends, it must come through on its own.
            cluster.restart("fast")
            store.append("s", [NewEvent(type="message.appended", data={**msg, "message_id": "m1"})])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not errors:
                if store.backend.query("SELECT count(*) FROM messages")[0][0] == 2:
                    break
                time.sleep(0.1)
            assert not errors, errors
            assert store.backend.query("SELECT count(*) FROM messages")[0][0] == 2
        finally:
            stop.set()
            store.append("wake", [ev()])  # end its wait on LISTEN
            t.join(10)
            runner.release()


# -- the append lock and its timeout --------------------------------------------------------------
def test_append_that_cannot_get_the_lock_gives_up_after_lock_timeout(db: str) -> None:
    EventStore.open(db).close()
    with psycopg.connect(db) as holder, EventStore.open(db, lock_timeout=0.5) as store:
        holder.execute("LOCK TABLE append_lock IN EXCLUSIVE MODE")  # an appender stuck mid-append
        t = time.monotonic()
        with pytest.raises(BackendError, match="lock_timeout") as e:
            store.append("a", [ev(0)])
        assert time.monotonic() - t < 3.0 and "nothing was written" in str(e.value)
        holder.rollback()
        assert store.append("a", [ev(0)])[0].position == 1


def test_an_advisory_lock_no_longer_blocks_appends(db: str) -> None:
    EventStore.open(db).close()
    with psycopg.connect(db) as other, EventStore.open(db, lock_timeout=2.0) as store:
        other.execute("SELECT pg_advisory_lock(%s)", (0x65766E7473746F72,))  # what froze appends before
        assert store.append("a", [ev(0)])[0].position == 1


def test_appends_across_crash_restarts_never_misreport_their_outcome(cluster: Cluster, db: str) -> None:  # noqa: F811
    """Writers append while the server crashes and restarts: every receipt is in the log, every
    append reported "nothing was written" is not, and nothing is written twice."""
    with EventStore.open(db, reconnect_timeout=3.0) as store:
        acked: list[int] = []
        not_written: list[int] = []
        unknown: list[int] = []  # may or may not be in the log
        other: list[str] = []
        stop = threading.Event()
        counter = itertools.count()

        def writer(k: int) -> None:
            while not stop.is_set():
                i = next(counter)
                try:
                    store.append(f"w{k}", [ev(i)])
                    acked.append(i)
                except AppendOutcomeUnknown:
                    unknown.append(i)
                except BackendError as e:
                    if "nothing was written" in str(e):
                        not_written.append(i)
                    else:
                        other.append(str(e))

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            for _ in range(2):
                time.sleep(0.3)
                cluster.restart("immediate")
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        logged = [e.data["i"] for e in store.read_all()]
        assert len(logged) == len(set(logged))  # nothing twice
        assert set(acked) <= set(logged)  # every receipt is in the log
        assert not set(not_written) & set(logged)  # "nothing was written" is true
        assert all("cannot reach" in m for m in other), other  # the rest: the server was down
        assert store.verify().ok and len(acked) > 0
