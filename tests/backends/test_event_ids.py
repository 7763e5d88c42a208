"""Event ids make retries idempotent: a retried append writes nothing and returns the original receipts.

On every backend; property: any sequence of appends with random retries counts each event once.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventStore, InvalidEvent, NewEvent
from eventstore.errors import EventIdConflict
from eventstore.hashing import entry_hash


def ev(event_id: str | None, i: int = 0, type_: str = "thing.happened") -> NewEvent:
    return NewEvent(type=type_, data={"i": i}, id=event_id)


def test_a_retry_writes_nothing_and_returns_the_original_receipts(store: EventStore) -> None:
    first = store.append("s", [ev("a", 1), ev("b", 2)], expected_version=0)
    store.append("other", [ev("a", 9)])  # an id names an event within its stream only
    again = store.append("s", [ev("a", 1), ev("b", 2)], expected_version=0)  # the expected version no longer holds
    assert again == first
    assert store.head()[0] == 3 and store.stream_version("s") == 2
    assert [e.id for e in store.read_stream("s")] == ["a", "b"]
    assert store.verify().ok and all(store.verify_receipt(r).ok for r in first)


def test_the_id_is_covered_by_the_entry_hash(store: EventStore) -> None:
    (r,) = store.append("s", [ev("evt-1")])
    row = store.backend.row_at(r.position)
    assert row is not None and row.event_id == "evt-1"
    with_id = entry_hash(
        row.position,
        row.stream_id,
        row.version,
        row.type,
        row.recorded_at,
        row.data_digest,
        row.metadata_digest,
        row.prev_hash,
        "evt-1",
    )
    without = entry_hash(
        row.position,
        row.stream_id,
        row.version,
        row.type,
        row.recorded_at,
        row.data_digest,
        row.metadata_digest,
        row.prev_hash,
    )
    assert r.hash == with_id.hex() != without.hex()


def test_an_id_changed_in_the_database_is_tampering(store: EventStore) -> None:
    store.append("s", [ev("evt-1")])
    store.append("s", [ev(None, 2)])
    with store.backend.transaction() as tx:
        if store.backend.dialect == "sqlite":
            tx.execute("DROP TRIGGER events_no_update")
        else:
            tx.execute("ALTER TABLE events DISABLE TRIGGER USER")
        tx.execute("UPDATE events SET event_id = 'evt-2' WHERE position = 1")
        tx.execute("UPDATE events SET event_id = 'added' WHERE position = 2")
    report = store.verify()
    assert not report.ok and report.problem is not None
    assert (report.problem.position, report.problem.kind) == (1, "hash")


def test_a_partial_or_different_retry_is_refused_and_writes_nothing(store: EventStore) -> None:
    store.append("s", [ev("a", 1), ev("b", 2)])
    with pytest.raises(EventIdConflict, match="not the others"):
        store.append("s", [ev("a", 1), ev("c", 3)])
    with pytest.raises(EventIdConflict, match="names a 'thing.happened' event"):
        store.append("s", [ev("a", 1, type_="other.type")])
    with pytest.raises(InvalidEvent, match="appears twice"):
        store.append("s", [ev("x"), ev("x")])
    with pytest.raises(InvalidEvent, match="id must not be empty"):
        store.append("s", [ev("")])
    with pytest.raises(InvalidEvent, match="every event of one append carries an id, or none"):
        store.append("s", [ev("y"), ev(None)])  # a retry of it could not be recognised
    assert store.head()[0] == 2


def test_retries_inside_append_many_are_all_or_nothing(store: EventStore) -> None:
    first = store.append_many([("a", [ev("1")], None), ("b", [ev("2")], None)])
    assert store.append_many([("a", [ev("1")], None), ("b", [ev("2")], None)]) == first
    with pytest.raises(EventIdConflict):
        store.append_many([("a", [ev("1"), ev("new")], None), ("c", [ev("3")], None)])
    assert store.head()[0] == 2 and store.stream_version("c") == 0


def test_one_id_twice_in_one_stream_of_append_many_is_refused_by_name(store: EventStore) -> None:
    with pytest.raises(InvalidEvent, match="batch item 2: event id 'z' of stream 'x' is also in batch item 0"):
        store.append_many([("x", [ev("z")], None), ("y", [ev("z")], None), ("x", [ev("w"), ev("z")], None)])
    assert store.head()[0] == 0
    assert len(store.append_many([("x", [ev("z")], None), ("y", [ev("z")], None)])) == 2


def test_concurrent_retries_of_one_append_count_once(store: EventStore) -> None:
    """Threads sending the same event at once share group commits: one write, the same receipt for all."""
    event_ids = [str(uuid.uuid4()) for _ in range(20)]
    results: list[list[str]] = [[] for _ in range(4)]

    def agent(k: int) -> None:
        for event_id in event_ids:
            (r,) = store.append("shared", [ev(event_id)])
            results[k].append(r.hash)

    threads = [threading.Thread(target=agent, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.stream_version("shared") == 20
    assert results[0] == results[1] == results[2] == results[3]
    assert store.verify().ok


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3), st.booleans()), min_size=1, max_size=25))
def test_any_sequence_with_retries_counts_each_event_once(sqlite_url: str, plan: list[tuple[int, int, bool]]) -> None:
    """Model: a dict of (stream, id) -> receipt. Each step appends n new events or retries an earlier append."""
    with EventStore.open(sqlite_url) as store:
        base = store.head()[0]
        sent: list[tuple[str, list[NewEvent], list[str]]] = []
        expected: dict[tuple[str, str], str] = {}
        for stream_no, n, retry in plan:
            if retry and sent:
                stream, events, hashes = sent[(stream_no * 7 + n) % len(sent)]
            else:
                stream = f"run{base}-s{stream_no}"
                events = [ev(str(uuid.uuid4()), i) for i in range(n)]
                hashes = []
            receipts = store.append(stream, events)
            if hashes:
                assert [r.hash for r in receipts] == hashes
            else:
                hashes[:] = [r.hash for r in receipts]
                sent.append((stream, events, hashes))
            for e, r in zip(events, receipts):
                expected[(stream, e.id or "")] = r.hash
        assert store.head()[0] - base == len(expected)
        assert store.verify().ok
