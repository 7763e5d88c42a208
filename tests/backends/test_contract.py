"""The backend contract: every test here runs on SQLite and on PostgreSQL, and must pass on both."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import msgspec
import pytest

from eventstore import (
    NO_STREAM,
    EventStore,
    EventStoreError,
    NewEvent,
    Receipt,
    WrongExpectedVersion,
)
from eventstore.migrate import Migrator
from eventstore.notes import Signer
from eventstore.proofs import check_inclusion


def ev(i: int = 0, **data: Any) -> NewEvent:
    return NewEvent(type="thing.happened", data={"i": i, **data}, metadata={"agent_id": "a"})


def raw_sql(store: EventStore, sql: str) -> None:
    with store.backend.transaction() as tx:
        tx.execute(sql)


def drop_triggers(store: EventStore) -> None:
    on = " ON events" if store.backend.dialect == "postgres" else ""
    raw_sql(store, f"DROP TRIGGER events_no_update{on}")
    raw_sql(store, f"DROP TRIGGER events_no_delete{on}")


def test_append_read_and_versions(store: EventStore) -> None:
    r = store.append("a", [ev(1), ev(2, text="héllo \u2028 😀")], expected_version=NO_STREAM)
    store.append("b", [ev(3)])
    assert [x.position for x in r] == [1, 2] and store.stream_version("a") == 2 and store.stream_version("z") == 0
    events = list(store.read_all(batch_size=2))
    assert [(e.position, e.stream_id, e.version) for e in events] == [(1, "a", 1), (2, "a", 2), (3, "b", 1)]
    assert events[1].data == {"i": 2, "text": "héllo \u2028 😀"}
    assert [e.version for e in store.read_stream("a", from_version=2)] == [2]
    assert store.verify().ok and all(store.verify_receipt(x).ok for x in r)


def test_expected_version_conflicts_write_nothing(store: EventStore) -> None:
    store.append("a", [ev()])
    with pytest.raises(WrongExpectedVersion):
        store.append("a", [ev(), ev()], expected_version=NO_STREAM)
    with pytest.raises(WrongExpectedVersion):
        store.append_many([("b", [ev()], None), ("a", [ev()], 0)])
    assert store.head()[0] == 1 and store.stream_version("b") == 0


def test_database_refuses_update_and_delete(store: EventStore) -> None:
    store.append("a", [ev()])
    for sql in ("UPDATE events SET type = 'x'", "DELETE FROM events"):
        with pytest.raises(Exception, match="append-only"):
            raw_sql(store, sql)
    assert store.verify().ok and store.head()[0] == 1


def test_tampering_is_detected(store: EventStore) -> None:
    receipts = [store.append("a", [ev(i)])[0] for i in range(5)]
    drop_triggers(store)
    raw_sql(store, "UPDATE events SET recorded_at = '2001-01-01T00:00:00.000000Z' WHERE position = 3")
    report = store.verify()
    assert not report.ok and report.problem and report.problem.position == 3
    raw_sql(store, "DELETE FROM events WHERE position = 5")
    assert not store.verify_receipt(receipts[4]).ok


def test_threads_lose_nothing(store: EventStore) -> None:
    def worker(k: int) -> None:
        for i in range(25):
            store.append(f"t{k}", [ev(i)], expected_version=i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = store.verify()
    assert report.ok and report.checked == 200
    assert all(store.stream_version(f"t{k}") == 25 for k in range(8))


APPENDER = r"""
import sys
from eventstore import EventStore, NewEvent
with EventStore.open(sys.argv[1], migrate=False) as store:
    for i in range(int(sys.argv[3])):
        store.append(f"{sys.argv[2]}-{i % 3}", [NewEvent(type="t", data={"i": i})])
"""


def test_processes_lose_nothing_and_a_tailing_reader_never_skips(store: EventStore, backend_url: str) -> None:
    seen: list[int] = []
    stop = threading.Event()

    def tail() -> None:
        nxt = 1
        while not stop.is_set() or nxt <= store.head()[0]:
            for e in store.read_all(nxt, batch_size=50):
                seen.append(e.position)
                nxt = e.position + 1
            store.backend.wait_for_append(nxt - 1, 0.05)

    reader = threading.Thread(target=tail)
    reader.start()
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, backend_url, f"p{k}", "40"]) for k in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    stop.set()
    reader.join(timeout=30)
    assert seen == list(range(1, 161))  # in order, no gap ever skipped
    report = store.verify()
    assert report.ok and report.checked == 160


def test_wait_for_append_wakes_up(store: EventStore) -> None:
    store.append("a", [ev()])
    threading.Timer(0.2, lambda: store.append("a", [ev()])).start()
    t0 = time.monotonic()
    store.backend.wait_for_append(1, 10.0)
    assert store.head()[0] == 2 and time.monotonic() - t0 < 5


def test_migrations_are_recorded_and_reversible(store: EventStore) -> None:
    m = Migrator(store.backend)
    assert all(s.state == "applied" for s in m.status())
    assert m.plan() == []
    last = m.down(allow_destructive=True)
    assert last is not None and [s.state for s in m.status()][-1] == "pending"
    assert [x.version for x in m.up()] == [last.version]


def test_checkpoints_and_proofs(store: EventStore) -> None:
    for i in range(0, 70, 7):
        store.append("a", [ev(j) for j in range(i, i + 7)])
    signer = Signer.generate("test.example/log")
    signed = store.checkpoint(signer)
    assert check_inclusion(store.prove_inclusion(33, signed.checkpoint.size), signed).position == 33
    assert store.verify_checkpoint(signed).ok


def test_erasure(store: EventStore) -> None:
    store.append("s", [NewEvent(type="note", data={"text": "secret"}, subject="bob", personal=("text",))])
    store.erase("bob", requested_by="dpo")
    assert next(store.read_all()).data == {"text": None}
    assert store.verify().ok


def test_closed_store(store: EventStore, backend_url: str) -> None:
    other = EventStore.open(backend_url)
    other.close()
    with pytest.raises(EventStoreError, match="closed"):
        other.append("a", [ev()])


def test_receipts_are_json(store: EventStore) -> None:
    (r,) = store.append("a", [ev()])
    assert msgspec.json.decode(msgspec.json.encode(r), type=Receipt) == r


def test_big_batches_round_trip_exactly(store: EventStore) -> None:
    """Large batches take a bulk path on some backends (COPY on PostgreSQL): same bytes, same chain."""
    batch = [
        NewEvent(type="t", data={"i": i, "s": "tab\there \\ nul\u0000 é 😀"}, metadata={"k": i}) for i in range(300)
    ]
    receipts = store.append("big", batch)
    assert [e.data for e in store.read_stream("big")] == [e.data for e in batch]
    assert store.verify().ok and all(store.verify_receipt(r).ok for r in receipts[::37])


def test_reads_return_what_was_written(store: EventStore) -> None:
    data = {"text": "héllo \u2028 😀", "n": 2**63, "f": 0.1, "nested": {"b": [1, None, True]}}
    store.append("s", [NewEvent(type="x", data=data, metadata={"k": "v"})])
    store.append("t", [ev(1)])
    store.append("s", [ev(2)])
    events = list(store.read_stream("s"))
    assert [e.version for e in events] == [1, 2]
    assert events[0].data == data and events[0].metadata == {"k": "v"}
    assert [e.position for e in store.read_all()] == [1, 2, 3]
    assert [e.position for e in store.read_all(from_position=2, batch_size=1)] == [2, 3]
    assert [e.version for e in store.read_stream("s", from_version=2)] == [2]
    assert list(store.read_stream("nobody")) == []


def test_stream_version(store: EventStore) -> None:
    assert store.stream_version("s") == 0
    store.append("s", [ev(), ev()])
    assert store.stream_version("s") == 2


def test_wrong_expected_version_names_stream_and_versions_and_writes_nothing(store: EventStore) -> None:
    store.append("s", [ev()])
    with pytest.raises(WrongExpectedVersion) as e:
        store.append("s", [ev(), ev()], expected_version=NO_STREAM)
    assert (e.value.stream_id, e.value.expected, e.value.actual) == ("s", 0, 1)
    assert "'s'" in str(e.value) and "expected 0" in str(e.value) and "actual 1" in str(e.value)
    assert isinstance(e.value, EventStoreError)
    assert store.head()[0] == 1
    store.append("s", [ev()], expected_version=1)
    assert store.stream_version("s") == 2
