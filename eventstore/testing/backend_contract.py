"""The backend conformance suite: what every storage backend must do, method by method.

Shipped in the package (as ``eventsourcing`` ships its recorder test cases) so that a new
backend reuses it. Subclass ``BackendContract`` in a pytest module and provide the ``url``
fixture (a fresh, empty database for each test)::

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def url(self, tmp_path):
            return str(tmp_path / "events.db")

It covers the ``Backend``, ``Writer`` and ``Tx`` methods and the statements the store runs on
its side tables, each through the backend alone (no ``EventStore``): a backend that passes
can hold a log. Needs pytest (a test dependency, not a runtime one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ..backends import open_backend, sql
from ..backends.base import Backend
from ..errors import EventStoreError, StoreClosed
from ..hashing import GENESIS_HASH, digest, entry_hash
from ..migrate import Migrator
from ..records import Row

RECORDED_AT = "2026-01-01T00:00:00.000000Z"


def make_rows(start: int, stream_id: str, first_version: int, n: int, prev: bytes = GENESIS_HASH) -> list[Row]:
    """``n`` chained rows of one stream from ``start``, as the store would build them."""
    rows = []
    for i in range(n):
        data = b'{"i":%d}' % (start + i)
        meta = b"{}"
        position, version = start + i, first_version + i
        h = entry_hash(position, stream_id, version, "t", RECORDED_AT, digest(data), digest(meta), prev)
        rows.append(
            Row(position, stream_id, version, "t", data, meta, digest(data), digest(meta), RECORDED_AT, prev, h)
        )
        prev = h
    return rows


class BackendContract:
    """Subclass and provide ``url``; every test method here then runs against your backend."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError("provide a `url` fixture: a fresh, empty database URL")

    @pytest.fixture
    def backend(self, url: str) -> Iterator[Backend]:
        b = open_backend(url)
        Migrator(b).up()
        try:
            yield b
        finally:
            b.close()

    def _append(self, backend: Backend, rows: list[Row]) -> None:
        with backend.write({r.stream_id for r in rows}) as w:
            w.insert(rows)

    # -- the log ---------------------------------------------------------------------
    def test_an_empty_log(self, backend: Backend) -> None:
        assert backend.head() == (0, None)
        assert backend.read_range(1, None, 10) == []
        assert backend.read_stream("s", 1, 10) == []
        assert backend.row_at(1) is None
        assert backend.stream_version("s") == 0
        assert backend.stream_position("s", 1) is None
        assert backend.counts() == (0, 0, {})

    def test_rows_come_back_exactly_as_written(self, backend: Backend) -> None:
        rows = make_rows(1, "a", 1, 3)
        self._append(backend, rows)
        assert backend.read_range(1, None, 10) == rows
        assert backend.row_at(2) == rows[1]
        assert backend.head() == (3, rows[-1].hash)
        assert all(type(v) is bytes for r in backend.read_range(1, None, 10) for v in (r.data, r.hash, r.prev_hash))

    def test_read_range_honours_bounds_and_limit(self, backend: Backend) -> None:
        self._append(backend, make_rows(1, "a", 1, 10))
        assert [r.position for r in backend.read_range(3, None, 4)] == [3, 4, 5, 6]
        assert [r.position for r in backend.read_range(3, 5, 10)] == [3, 4, 5]
        assert backend.read_range(11, None, 10) == []

    def test_streams_versions_and_positions(self, backend: Backend) -> None:
        a = make_rows(1, "a", 1, 2)
        b = make_rows(3, "b", 1, 2, prev=a[-1].hash)
        self._append(backend, a + b)
        assert backend.stream_version("a") == 2 and backend.stream_version("b") == 2
        assert [r.position for r in backend.read_stream("b", 2, 10)] == [4]
        assert backend.stream_position("b", 1) == 3 and backend.stream_position("b", 3) is None
        assert backend.counts() == (4, 2, {"t": 4})
        size = backend.size_bytes()
        assert size is None or size > 0

    def test_the_writer_sees_the_head_and_stream_versions(self, backend: Backend) -> None:
        self._append(backend, make_rows(1, "a", 1, 2))
        with backend.write({"a", "new"}) as w:
            assert w.head()[0] == 2
            assert w.stream_versions(["a", "new"]) == {"a": 2, "new": 0}
            w.insert(make_rows(3, "new", 1, 1, prev=w.head()[1] or GENESIS_HASH))
        assert backend.head()[0] == 3

    def test_an_error_inside_write_rolls_everything_back(self, backend: Backend) -> None:
        with pytest.raises(RuntimeError), backend.write({"a"}) as w:
            w.insert(make_rows(1, "a", 1, 3))
            raise RuntimeError("the caller failed after inserting")
        assert backend.head() == (0, None)
        self._append(backend, make_rows(1, "a", 1, 1))  # and the writer is usable afterwards
        assert backend.head()[0] == 1

    def test_a_duplicate_stream_version_is_refused_and_writes_nothing(self, backend: Backend) -> None:
        self._append(backend, make_rows(1, "a", 1, 1))
        with pytest.raises(EventStoreError):
            self._append(backend, make_rows(2, "a", 1, 1))
        assert backend.head()[0] == 1

    def test_the_events_table_refuses_update_and_delete(self, backend: Backend) -> None:
        self._append(backend, make_rows(1, "a", 1, 2))
        for statement in ("UPDATE events SET type = 'x' WHERE position = 1", "DELETE FROM events WHERE position = 2"):
            with pytest.raises(Exception, match="append-only"), backend.transaction() as tx:
                tx.execute(statement)
        assert [r.type for r in backend.read_range(1, None, 10)] == ["t", "t"]

    def test_wait_for_append_times_out_and_wakes(self, backend: Backend) -> None:
        t = time.monotonic()
        backend.wait_for_append(0, 0.2)
        assert 0.15 <= time.monotonic() - t < 5
        timer = threading.Timer(0.2, lambda: self._append(backend, make_rows(1, "a", 1, 1)))
        timer.start()
        t = time.monotonic()
        backend.wait_for_append(0, 10)
        timer.join()
        assert backend.head()[0] == 1 and time.monotonic() - t < 5

    # -- side tables -------------------------------------------------------------------
    def test_a_side_transaction_commits_or_rolls_back(self, backend: Backend) -> None:
        with backend.transaction() as tx:
            tx.execute("INSERT INTO merkle_state (id, size) VALUES (1, 16)")
        with pytest.raises(RuntimeError), backend.transaction() as tx:
            tx.execute("UPDATE merkle_state SET size = 32 WHERE id = 1")
            raise RuntimeError("abort")
        assert backend.query("SELECT size FROM merkle_state WHERE id = 1") == [(16,)]

    def test_placeholders_are_portable_and_literals_untouched(self, backend: Backend) -> None:
        with backend.transaction() as tx:
            tx.executemany(
                "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)",
                [(4, i, bytes([i]) * 32) for i in range(3)],
            )
            rows = tx.execute("SELECT idx FROM merkle_nodes WHERE level = ? AND idx >= ? ORDER BY idx", (4, 1))
        assert rows == [(1,), (2,)]
        assert backend.query("SELECT '?' || 'x%' FROM merkle_state WHERE 1 = 1 UNION ALL SELECT '?x%'") == [("?x%",)]

    def test_merkle_statements(self, backend: Backend) -> None:
        self._append(backend, make_rows(1, "a", 1, 20))
        with backend.transaction() as tx:
            tx.executemany(sql.MERKLE_PUT_NODE, [(4, 0, bytes(32)), (5, 0, bytes(32))])
            tx.executemany(sql.MERKLE_PUT_NODE, [(4, 0, b"\x01" * 32)])  # overwrites
            tx.execute(sql.MERKLE_ADVANCE, (32,))
            tx.execute(sql.MERKLE_ADVANCE, (16,))  # never moves back
        assert backend.query(sql.MERKLE_SYNCED_SIZE) == [(32,)]
        assert [bytes(h) for (h,) in backend.query(sql.MERKLE_NODE, (4, 0))] == [b"\x01" * 32]
        assert {(lv, i) for lv, i, _ in backend.query(sql.MERKLE_ALL_NODES)} == {(4, 0), (5, 0)}
        rows = backend.read_range(1, None, 20)
        assert [bytes(h) for (h,) in backend.query(sql.LEAF_HASHES, (3, 7))] == [r.hash for r in rows[3:7]]
        with backend.transaction() as tx:
            for statement in sql.MERKLE_RESET:
                tx.execute(statement)
        assert backend.query(sql.MERKLE_ALL_NODES) == [] and backend.query(sql.MERKLE_SYNCED_SIZE) == []

    def test_checkpoint_statements(self, backend: Backend) -> None:
        written = (("o", 3), ("o", 1), ("p", 2))
        with backend.transaction() as tx:
            for origin, size in written:
                tx.execute(sql.CHECKPOINT_INSERT, (origin, size, bytes([size]) * 32, f"note {size}\n", RECORDED_AT))
        rows = backend.query(sql.CHECKPOINTS)
        assert [(o, n, bytes(r), t) for o, n, r, t in rows] == [
            (o, s, bytes([s]) * 32, f"note {s}\n") for o, s in written
        ]
        assert [n for _, n, _, _ in backend.query(sql.CHECKPOINTS_OF_ORIGIN, ("o",))] == [3, 1]
        assert [n for _, n, _, _ in backend.query(sql.CHECKPOINT_NEWEST_OF_ORIGIN, ("o",))] == [3]
        assert [n for n, _ in backend.query(sql.CHECKPOINT_AT_OR_BELOW, (2,))] == [2]
        assert [n for n, _ in backend.query(sql.CHECKPOINT_AT_OR_ABOVE, (2,))] == [2]
        assert backend.query(sql.CHECKPOINT_AT_OR_ABOVE, (4,)) == []
        assert [n for _, _, n, _ in backend.query(sql.CHECKPOINT_ROOTS)] == [3, 1, 2]

    def test_subject_key_statements(self, backend: Backend) -> None:
        with backend.transaction() as tx:
            tx.execute(sql.SUBJECT_KEY_CREATE, ("alice", "aa" * 32, RECORDED_AT))
            tx.execute(sql.SUBJECT_KEY_CREATE, ("alice", "bb" * 32, RECORDED_AT))  # the first one wins
            tx.execute(sql.SUBJECT_KEY_CREATE, ("bob", "cc" * 32, RECORDED_AT))
        assert backend.query(sql.SUBJECT_KEY, ("alice",)) == [("aa" * 32,)]
        with backend.transaction() as tx:
            tx.execute(sql.SUBJECT_KEY_ERASE, ("alice", RECORDED_AT, RECORDED_AT, "dpo"))
            tx.execute(sql.SUBJECT_KEY_ERASE, ("carol", RECORDED_AT, RECORDED_AT, "dpo"))  # never seen: a tombstone
        assert sorted(backend.query(sql.subject_keys_in(3), ["alice", "bob", "carol"])) == [
            ("alice", None),
            ("bob", "cc" * 32),
            ("carol", None),
        ]

    def test_retention_statements(self, backend: Backend) -> None:
        self._append(backend, make_rows(1, "a", 1, 5))
        with backend.transaction() as tx:
            tx.execute(sql.RETENTION_POLICY_PUT, ("streams", "a*", 60, "1m", RECORDED_AT, "ops"))
            tx.execute(sql.RETENTION_POLICY_PUT, ("streams", "a*", 3600, "1h", RECORDED_AT, "ops"))  # replaces
            tx.execute(sql.RETENTION_POLICY_PUT, ("type", "t", 0, "0s", RECORDED_AT, "ops"))
            tx.execute(sql.RETENTION_POLICY_DELETE, ("type", "t"))
            tx.execute(sql.RETENTION_SETTING_PUT, ("floor_seconds", "10"))
            tx.execute(sql.RETENTION_SETTING_PUT, ("floor_seconds", "20"))
            tx.execute(sql.HOLD_PLACE, ("h1", "streams", "a", "case", RECORDED_AT, "legal"))
            tx.execute(sql.HOLD_PLACE, ("h2", "subject", "bob", "case", RECORDED_AT, "legal"))
            tx.execute(sql.HOLD_RELEASE, (RECORDED_AT, "legal", "h1"))
            tx.execute(sql.RETENTION_RUN_START, ("r1", RECORDED_AT, 1.0, "ops", None, None))
            tx.execute(sql.RETENTION_RUN_PROGRESS, (2.0, 3, 1, 3, '{"x": 3}', "r1"))
        assert backend.query(sql.RETENTION_POLICIES) == [("streams", "a*", 3600, "1h", RECORDED_AT, "ops")]
        assert backend.query(sql.RETENTION_SETTING, ("floor_seconds",)) == [("20",)]
        assert [h[0] for h in backend.query(sql.HOLDS)] == ["h1", "h2"]
        assert backend.query(sql.HOLDS_ACTIVE) == [("h2", "subject", "bob", "case")]
        assert backend.query(sql.RETENTION_RUNS_STALE, (1.5,)) == []
        assert backend.query(sql.RETENTION_RUNS_STALE, (2.5,)) == [("r1", "ops", None, None, 3, 1, 3, '{"x": 3}')]
        with backend.transaction() as tx:
            tx.executemany(sql.PRUNE_PAYLOADS_BETWEEN, [(1, 2), (4, 4)])
            tx.execute(sql.RETENTION_RUN_DONE, ("r1",))
        assert backend.query(sql.RETENTION_RUNS_STALE, (2.5,)) == []
        rows = backend.read_range(1, None, 10)
        assert [r.data is None for r in rows] == [True, True, False, True, False]
        assert [p for p, *_ in backend.query(sql.PRUNE_CANDIDATES, (0, 5, 10))] == [3, 5]
        assert [p for p, *_ in backend.query(sql.PRUNE_CANDIDATES_WITH_DATA, (3, 5, 10))] == [5]
        assert dict(backend.query(sql.PAYLOADS_BETWEEN, (2, 3)))[2] is None

    # -- migrations and lifecycle ---------------------------------------------------------
    def test_migrations_are_recorded_once(self, backend: Backend) -> None:
        applied = backend.applied_migrations()
        assert applied and [a.version for a in applied] == sorted(a.version for a in applied)
        migration = Migrator(backend).available[0]
        backend.apply_migration(migration, "up")  # already applied: a no-op
        assert backend.applied_migrations() == applied

    def test_a_closed_backend_refuses_work(self, backend: Backend) -> None:
        backend.close()
        for call in (backend.head, lambda: backend.write().__enter__(), lambda: backend.transaction().__enter__()):
            with pytest.raises(StoreClosed):
                call()
        backend.close()  # closing twice is harmless
