"""Hypothesis: the chain verifies after any appends, and any tampering is detected."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventstore import EventStore, NewEvent, Receipt, WrongExpectedVersion

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
payload = st.dictionaries(st.text(max_size=8), json_value, max_size=4)
streams = st.sampled_from(["a", "b", "c", "séance-Ω"])
events = st.lists(
    st.builds(NewEvent, type=st.sampled_from(["x", "y.z"]), data=payload, metadata=payload), min_size=1, max_size=4
)

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class LogMachine(RuleBasedStateMachine):
    """A model of the log (a list of appended events) checked against the real store."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.store = EventStore.open(Path(self.dir) / "m.db", durability="process")
        self.model: list[tuple[str, NewEvent]] = []
        self.receipts: list[Receipt] = []

    def version(self, stream: str) -> int:
        return sum(1 for s, _ in self.model if s == stream)

    @rule(stream=streams, evs=events, mode=st.sampled_from(["any", "right", "wrong"]))
    def append(self, stream: str, evs: list[NewEvent], mode: str) -> None:
        current = self.version(stream)
        expected = {"any": None, "right": current, "wrong": current + 1}[mode]
        try:
            rs = self.store.append(stream, evs, expected_version=expected)
        except WrongExpectedVersion as e:
            assert mode == "wrong" and e.actual == current
            return
        assert mode != "wrong"
        assert [r.version for r in rs] == list(range(current + 1, current + 1 + len(evs)))
        self.model += [(stream, e) for e in evs]
        self.receipts += rs

    @rule(first=streams, second=streams, evs=events)
    def append_many(self, first: str, second: str, evs: list[NewEvent]) -> None:
        out = self.store.append_many([(first, evs, None), (second, evs, None)])
        self.model += [(first, e) for e in evs] + [(second, e) for e in evs]
        self.receipts += out[0] + out[1]

    @invariant()
    def log_matches_model(self) -> None:
        got = list(self.store.read_all(batch_size=3))
        assert [(e.stream_id, e.type, e.data, e.metadata) for e in got] == [
            (s, e.type, e.data, e.metadata) for s, e in self.model
        ]
        assert [e.position for e in got] == list(range(1, len(self.model) + 1))

    @invariant()
    def chain_verifies(self) -> None:
        report = self.store.verify(batch_size=4)
        assert report.ok, report.problem
        assert report.checked == len(self.model)

    @precondition(lambda self: self.receipts)
    @invariant()
    def receipts_verify(self) -> None:
        for r in self.receipts[-3:]:
            assert self.store.verify_receipt(r).ok

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestLogMachine = LogMachine.TestCase
TestLogMachine.settings = settings(max_examples=20, stateful_step_count=8, deadline=None)


# -- tampering ----------------------------------------------------------------------

COLUMNS = [
    "position",
    "stream_id",
    "version",
    "type",
    "data",
    "metadata",
    "data_digest",
    "metadata_digest",
    "recorded_at",
    "prev_hash",
    "hash",
    "event_id",
]


def _build(path: Path, n: int) -> list[Receipt]:
    with EventStore.open(path, durability="process") as store:
        out = []
        for i in range(n):
            event_id = f"id-{i}" if i % 2 else None  # half the entries carry an id (hash scheme v2)
            event = NewEvent(type="t", data={"i": i, "text": "héllo"}, metadata={"m": i}, id=event_id)
            out += store.append(f"s{i % 3}", [event])
        return out


def _tamper_conn(path: Path) -> sqlite3.Connection:
    """What an attacker with file access does first: drop the immutability triggers."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    return conn


def _changed(value: Any, column: str, flip: int) -> Any:
    if value is None:  # an entry without an event id: giving it one is a change too
        return f"id-{flip}"
    if isinstance(value, bytes):
        b = bytearray(value)
        b[flip % len(b)] ^= 1 << (flip % 8)
        return bytes(b)
    if isinstance(value, int):
        return value + 1 + flip % 5 if column != "position" else value + 1000
    return value + "x" if flip % 2 else "X" + value[1:]


@FAST
@given(n=st.integers(2, 12), row=st.integers(0, 11), column=st.sampled_from(COLUMNS), flip=st.integers(0, 255))
def test_any_change_to_any_column_is_caught(n: int, row: int, column: str, flip: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.db"
        _build(path, n)
        pos = row % n + 1
        conn = _tamper_conn(path)
        old = conn.execute(f"SELECT {column} FROM events WHERE position = ?", (pos,)).fetchone()[0]
        new = _changed(old, column, flip)
        if column == "version":
            # a version collision is refused by the unique index; an attacker takes a free one
            new = old + 100
        conn.execute(f"UPDATE events SET {column} = ? WHERE position = ?", (new, pos))
        conn.close()
        with EventStore.open(path, migrate=False) as store:
            report = store.verify()
        assert not report.ok
        assert report.problem is not None
        # an edit is reported at the edited entry (a moved position shows as a gap there)
        assert report.problem.position == pos


@FAST
@given(n=st.integers(3, 12), row=st.integers(0, 11))
def test_deletion_is_caught(n: int, row: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.db"
        receipts = _build(path, n)
        pos = row % n + 1
        conn = _tamper_conn(path)
        conn.execute("DELETE FROM events WHERE position = ?", (pos,))
        conn.close()
        with EventStore.open(path, migrate=False) as store:
            report = store.verify()
            if pos < n:
                assert not report.ok and report.problem and report.problem.position == pos
            else:
                # cutting the tail leaves a valid shorter chain: the receipt is what catches it
                assert report.ok and report.head_position == n - 1
            assert not store.verify_receipt(receipts[pos - 1]).ok


@FAST
@given(n=st.integers(3, 12), i=st.integers(0, 11), j=st.integers(0, 11))
def test_reordering_is_caught(n: int, i: int, j: int) -> None:
    a, b = sorted((i % n + 1, j % n + 1))
    if a == b:
        b = a + 1 if a < n else a - 1
        a, b = sorted((a, b))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.db"
        _build(path, n)
        conn = _tamper_conn(path)
        # swap the two rows' contents, keeping positions
        rows = {p: conn.execute("SELECT * FROM events WHERE position = ?", (p,)).fetchone() for p in (a, b)}
        conn.execute("DROP INDEX events_stream_version")
        conn.execute("DROP INDEX events_stream_event_id")
        for p, src in ((a, rows[b]), (b, rows[a])):
            sets = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
            conn.execute(f"UPDATE events SET {sets} WHERE position = ?", (*src[1:], p))
        conn.close()
        with EventStore.open(path, migrate=False) as store:
            report = store.verify()
        assert not report.ok and report.problem and report.problem.position == a


def test_full_recompute_by_an_attacker_is_caught_by_receipts(tmp_path: Path) -> None:
    """Someone with write access edits an event and recomputes every later hash: plain verify
    passes (a chain alone cannot stop this), but the receipts the agents hold do not."""
    from eventstore.hashing import digest, entry_hash

    path = tmp_path / "t.db"
    receipts = _build(path, 6)
    conn = _tamper_conn(path)
    rows = conn.execute("SELECT * FROM events ORDER BY position").fetchall()
    prev = rows[1][10]
    for r in rows[2:]:
        pos, stream, version, type_, data, meta, dd, md, at, _, _, event_id = r
        if pos == 3:
            data = data.replace(b'"i":2', b'"i":9')
            dd = digest(data)
        h = entry_hash(pos, stream, version, type_, at, dd, md, prev, event_id)
        conn.execute(
            "UPDATE events SET data=?, data_digest=?, prev_hash=?, hash=? WHERE position=?", (data, dd, prev, h, pos)
        )
        prev = h
    conn.close()
    with EventStore.open(path, migrate=False) as store:
        assert store.verify().ok
        assert [store.verify_receipt(r).ok for r in receipts] == [True, True, False, False, False, False]
