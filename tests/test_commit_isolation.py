"""Group commit isolation: one caller's bad request never fails another's append.

Names the databases would refuse are refused up front, alike on both backends; a
shared commit that fails anyway is retried request by request; a failed COMMIT
never yields a receipt.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import EventStore, InvalidEvent, NewEvent, WrongExpectedVersion
from eventstore.commit import Request as _Request
from eventstore.errors import BackendError
from eventstore.mapping import check_name as _check_name


def ev(i: int = 0, type: str = "thing.happened") -> NewEvent:
    return NewEvent(type=type, data={"i": i})


BAD_NAMES = [
    ("\x00abc", "NUL"),
    ("ab\x00", "NUL"),
    ("a\ud800b", "lone surrogate"),
]


@pytest.mark.parametrize("name,why", BAD_NAMES)
def test_names_the_database_would_refuse_are_invalid_events_on_both_backends(
    store: EventStore, name: str, why: str
) -> None:
    with pytest.raises(InvalidEvent, match="stream id") as e:
        store.append(name, [ev()])
    assert why in str(e.value) or "Unicode" in str(e.value)
    with pytest.raises(InvalidEvent, match="type"):
        store.append("s", [ev(type=name)])
    with pytest.raises(InvalidEvent, match="batch item 1: stream id"):
        store.append_many([("ok", [ev()], None), (name, [ev()], None)])
    with pytest.raises(InvalidEvent, match="not valid Unicode"):
        store.append("s", [NewEvent(type="x", data={"text": "\udc80"})])
    with pytest.raises(InvalidEvent, match="not valid Unicode"):
        store.append("s", [NewEvent(type="x", data={}, metadata={"\udc80": 1})])
    assert store.head() == (0, None)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_check_name_accepts_exactly_what_both_databases_store(name: str) -> None:
    try:
        name.encode()
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    ok = encodable and "\x00" not in name
    if ok:
        assert _check_name(name, "stream id") == name
    else:
        with pytest.raises(InvalidEvent):
            _check_name(name, "stream id")


def test_a_shared_commit_refused_by_the_database_fails_only_the_guilty_request(store: EventStore) -> None:
    """A request that slipped past validation (here built by hand) must not take the batch down."""
    good1 = _Request("a", None, store.prepare([ev(1)]))
    bad = _Request("\x00bad", None, store.prepare([ev(2)]))  # both databases refuse this stream id
    mismatch = _Request("b", 5, store.prepare([ev(3)]))
    good2 = _Request("b", 0, store.prepare([ev(4)]))
    store.commits.commit([good1, bad, mismatch, good2])
    assert all(r.done for r in (good1, bad, mismatch, good2))
    assert good1.error is None and good2.error is None
    assert isinstance(bad.error, BackendError) and not bad.rows
    assert isinstance(mismatch.error, WrongExpectedVersion) and mismatch.error.actual == 0 and not mismatch.rows
    assert [(e.stream_id, e.data["i"]) for e in store.read_all()] == [("a", 1), ("b", 4)]
    assert [r.position for r in good1.rows + good2.rows] == [1, 2]
    assert store.verify().ok


def test_concurrent_appends_survive_a_bad_caller(store: EventStore) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def good(n: int) -> None:
        barrier.wait()
        for i in range(20):
            store.append(f"s{n}", [ev(i)])

    def bad() -> None:
        barrier.wait()
        for _ in range(20):
            try:
                store.append("\x00evil", [ev()])
            except InvalidEvent as e:
                errors.append(e)

    threads = [threading.Thread(target=good, args=(n,)) for n in range(5)] + [threading.Thread(target=bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 20
    assert store.head()[0] == 100 and store.verify().ok


class _FailingCommit:
    """A sqlite3 connection whose COMMIT fails (as on a full disk or an I/O error)."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


def test_a_failed_commit_on_sqlite_returns_no_receipt_and_says_so(sqlite_store: EventStore) -> None:
    sqlite_store.append("s", [ev(0)])
    backend = sqlite_store.backend
    real = backend._wconn  # type: ignore[attr-defined]
    backend._wconn = _FailingCommit(real)  # type: ignore[attr-defined]
    try:
        with pytest.raises(BackendError, match="commit failed.*disk I/O error"):
            sqlite_store.append("s", [ev(1)])
        results: list[object] = []

        def one(n: int) -> None:
            try:
                results.append(sqlite_store.append(f"t{n}", [ev(n)]))
            except BackendError as e:
                results.append(e)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 4 and all(isinstance(r, BackendError) for r in results)
    finally:
        backend._wconn = real  # type: ignore[attr-defined]
    assert sqlite_store.head()[0] == 1  # nothing of the failed commits is visible
    # and the store works again, its cached head not fooled by the rolled-back rows
    assert sqlite_store.append("s", [ev(2)], expected_version=1)[0].position == 2
    assert sqlite_store.verify().ok
