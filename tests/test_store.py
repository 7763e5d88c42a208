"""The EventStore API as agents use it: appends, receipts, versions, reads, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pytest

from eventstore import (
    NO_STREAM,
    EventStore,
    EventTooLarge,
    InvalidEvent,
    NewEvent,
    Receipt,
    WrongExpectedVersion,
)


def ev(i: int = 0, type: str = "thing.happened", **data: object) -> NewEvent:
    return NewEvent(type=type, data={"i": i, **data}, metadata={"agent_id": "a1"})


def test_append_returns_receipts_that_chain(sqlite_store: EventStore) -> None:
    r1 = sqlite_store.append("s", [ev(1), ev(2)], expected_version=NO_STREAM)
    r2 = sqlite_store.append("t", [ev(3)])
    assert [r.position for r in r1 + r2] == [1, 2, 3]
    assert [(r.stream_id, r.version) for r in r1 + r2] == [("s", 1), ("s", 2), ("t", 1)]
    assert r1[0].prev_hash == "00" * 32
    assert r1[1].prev_hash == r1[0].hash and r2[0].prev_hash == r1[1].hash
    # a receipt is JSON-serialisable and round-trips
    assert msgspec.json.decode(msgspec.json.encode(r2[0]), type=Receipt) == r2[0]


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (NewEvent(type="", data={}), "type must not be empty"),
        (NewEvent(type="x", data={"a": {"b": float("nan")}}), "$.data.a.b"),
        (NewEvent(type="x", data={"a": [1, float("inf")]}), "$.data.a[1]"),
        (NewEvent(type="x", data={"big": 2**64}), "$.data.big"),
        (NewEvent(type="x", data={"raw": b"\x00"}), "base64"),
        (NewEvent(type="x", data={1: "non-string key"}), "not a string"),
        (NewEvent(type="x", data={"when": object()}), "not JSON-representable"),
        (NewEvent(type="x", data=[1, 2]), "$.data must be a JSON object"),
        (NewEvent(type="x", data={}, metadata={"m": {1, 2}}), "$.metadata.m"),
        (
            NewEvent(
                type="message.appended",
                data={"session_id": "s", "message_id": "m", "role": "user", "content": "hi", "tokens_used": "many"},
            ),
            "$.data.tokens_used",
        ),
        (
            NewEvent(
                type="message.appended", data={"session_id": "s", "message_id": "m", "role": "robot", "content": "hi"}
            ),
            "$.data.role",
        ),
        (NewEvent(type="tool.started", data={"session_id": "s", "execution_id": "e", "tool_name": "t"}), "input"),
    ],
)
def test_bad_events_are_refused_with_the_path_and_nothing_is_written(
    sqlite_store: EventStore, event: NewEvent, fragment: str
) -> None:
    sqlite_store.append("s", [ev()])
    with pytest.raises(InvalidEvent) as e:
        sqlite_store.append("s", [ev(), event])  # the good first event must not be written either
    assert fragment in str(e.value)
    assert sqlite_store.head()[0] == 1


def test_bad_stream_ids_and_arguments(sqlite_store: EventStore) -> None:
    with pytest.raises(InvalidEvent, match="stream id must not be empty"):
        sqlite_store.append("", [ev()])
    with pytest.raises(InvalidEvent, match="non-empty list"):
        sqlite_store.append("s", [])
    with pytest.raises(InvalidEvent, match="not a single NewEvent"):
        sqlite_store.append("s", ev())  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent, match="expected_version"):
        sqlite_store.append("s", [ev()], expected_version=-1)
    assert sqlite_store.head() == (0, None)


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "a.db", max_event_bytes=100) as store:
        store.append("s", [NewEvent(type="x", data={"t": "a" * 50})])
        with pytest.raises(EventTooLarge, match="limit is 100 bytes"):
            store.append("s", [NewEvent(type="x", data={"t": "a" * 200})])
        assert store.head()[0] == 1
    with EventStore.open(tmp_path / "b.db") as store:  # default 1 MiB
        store.append("s", [NewEvent(type="x", data={"t": "a" * 500_000})])
        with pytest.raises(EventTooLarge):
            store.append("s", [NewEvent(type="x", data={"t": "a" * (1 << 20)})])


def test_append_many_is_all_or_nothing(sqlite_store: EventStore) -> None:
    sqlite_store.append("b", [ev()])
    with pytest.raises(WrongExpectedVersion):
        sqlite_store.append_many([("a", [ev()], NO_STREAM), ("b", [ev()], NO_STREAM)])
    assert sqlite_store.head()[0] == 1
    out = sqlite_store.append_many([("a", [ev(), ev()], NO_STREAM), ("b", [ev()], 1)])
    assert [[r.position for r in rs] for rs in out] == [[2, 3], [4]]


def test_threads_share_one_store_and_each_gets_its_own_check(sqlite_store: EventStore) -> None:
    """8 threads append concurrently: gapless positions, per-stream versions, conflicts raised per caller."""
    errors: list[WrongExpectedVersion] = []
    receipts: list[Receipt] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(40):
            try:
                # every thread races for the shared stream with an optimistic check
                shared_v = sqlite_store.stream_version("shared")
                rs = sqlite_store.append("shared", [ev(i)], expected_version=shared_v)
            except WrongExpectedVersion as e:
                with lock:
                    errors.append(e)
                rs = []
            rs += sqlite_store.append(f"own-{k}", [ev(i)], expected_version=i)
            with lock:
                receipts.extend(rs)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    positions = sorted(r.position for r in receipts)
    assert positions == list(range(1, len(receipts) + 1))
    shared = list(sqlite_store.read_stream("shared"))
    assert [e.version for e in shared] == list(range(1, len(shared) + 1))
    assert len(shared) + len(errors) == 8 * 40
    assert all(sqlite_store.stream_version(f"own-{k}") == 40 for k in range(8))
    assert sqlite_store.verify().ok


def test_receipt_stops_verifying_when_row_edited_or_log_cut(sqlite_url: str) -> None:
    import sqlite3

    with EventStore.open(sqlite_url) as store:
        receipts = [store.append("s", [ev(i)])[0] for i in range(5)]
        assert all(store.verify_receipt(r).ok for r in receipts)
    conn = sqlite3.connect(sqlite_url)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("UPDATE events SET recorded_at = '2000-01-01T00:00:00.000000Z' WHERE position = 2")
    conn.execute("DELETE FROM events WHERE position >= 4")
    conn.commit()
    conn.close()
    with EventStore.open(sqlite_url) as store:
        assert store.verify_receipt(receipts[0]).ok
        bad = store.verify_receipt(receipts[1])
        assert not bad.ok and bad.problem and bad.problem.kind == "hash"
        # a receipt speaks for its own row; the full verify finds the edited one
        assert store.verify_receipt(receipts[2]).ok
        report = store.verify()
        assert not report.ok and report.problem and report.problem.position == 2
        cut = store.verify_receipt(receipts[4])
        assert not cut.ok and cut.problem and "cut below" in cut.problem.message


def test_open_accepts_sqlite_urls_and_refuses_unknown_schemes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eventstore import ConfigurationError

    monkeypatch.chdir(tmp_path)
    with EventStore.open("sqlite:///rel.db") as store:
        store.append("s", [ev()])
    assert (tmp_path / "rel.db").exists()
    with EventStore.open(f"sqlite:///{tmp_path}/abs.db") as store:
        assert store.head() == (0, None)
    with pytest.raises(ConfigurationError, match="unsupported database URL"):
        EventStore.open("mysql://x/y")
    with EventStore.open(tmp_path / "missing-dir" / "x.db"):  # the parent directory is created
        pass
    assert (tmp_path / "missing-dir" / "x.db").exists()
