"""One bad event must not stop every reader: what can be appended can be read back and projected,
and whatever is stored (by an older version, or altered by hand) reads without raising."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventStore, InvalidEvent, NewEvent, codec
from eventstore.cli import main
from eventstore.commit import Request as _Request
from eventstore.hashing import digest
from eventstore.mapping import Prepared as _Prepared
from eventstore.mapping import to_recorded
from eventstore.records import Row

MSG = {"session_id": "s1", "message_id": "m1", "role": "user", "content": "hello"}


def nested(depth: int) -> dict[str, object]:
    """An object ``depth`` levels deep (the object itself is level 1)."""
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def append_raw(store: EventStore, stream: str, type_: str, data: bytes, metadata: bytes = b"{}") -> None:
    """Append stored bytes that the current store would refuse (as an older version or a hand edit
    could have left them), correctly chained: the reader must cope with them."""
    tb = type_.encode()
    prepared = _Prepared(type_, len(tb).to_bytes(4, "big") + tb, data, metadata, digest(data), digest(metadata))
    store.commits.submit([_Request(stream, None, [prepared])], atomic=True)


# -- refused on append ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, path",
    [
        ({"x": {"$personal": 1}}, "$.data.x.$personal"),
        ({"$personal": {"v": 1}}, "$.data.$personal"),
        ({"a": [1, {"b": {"$personal": None}}]}, "$.data.a[1].b.$personal"),
    ],
)
def test_the_envelope_key_is_refused_in_client_data_at_any_depth(
    store: EventStore, data: dict[str, object], path: str
) -> None:
    with pytest.raises(InvalidEvent) as e:
        store.append("s", [NewEvent(type="note", data=data)])
    assert e.value.path == path and path in str(e.value)
    with pytest.raises(InvalidEvent, match=r"\$\.metadata\.m\.\$personal"):
        store.append("s", [NewEvent(type="note", metadata={"m": {"$personal": 1}})])
    assert store.head()[0] == 0


def test_other_dollar_keys_are_client_data(store: EventStore) -> None:
    """JSON Schema in tool inputs uses $schema/$ref: only the envelope key is reserved."""
    data = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/x"}
    store.append("s", [NewEvent(type="note", data=data)])
    assert next(store.read_all()).data == data


def test_nesting_is_bounded_on_append_with_the_path(store: EventStore) -> None:
    store.append("s", [NewEvent(type="note", data=nested(codec.MAX_DEPTH))])
    with pytest.raises(InvalidEvent, match=f"nested deeper than {codec.MAX_DEPTH} levels") as e:
        store.append("s", [NewEvent(type="note", data={"ok": 1, "deep": nested(codec.MAX_DEPTH)})])
    assert e.value.path is not None and e.value.path.startswith("$.data.deep.a.a")
    with pytest.raises(InvalidEvent, match="nested deeper"):
        store.append("s", [NewEvent(type="note", metadata={"m": [nested(codec.MAX_DEPTH)]})])
    with pytest.raises(InvalidEvent, match="nested deeper"):  # inside a personal field too
        store.append("s", [NewEvent(type="note", data={"t": nested(900)}, subject="al", personal=("t",))])
    assert store.head()[0] == 1
    (event,) = store.read_all()
    assert event.unreadable is None and event.data == nested(codec.MAX_DEPTH)


def test_a_lone_surrogate_is_refused_with_its_path(store: EventStore) -> None:
    with pytest.raises(InvalidEvent, match=r"\$\.data\.x is not valid Unicode"):
        store.append("s", [NewEvent(type="note", data={"x": "a\udc80"})])
    with pytest.raises(InvalidEvent, match=r"\$\.data\.y\[0\] is not valid Unicode"):
        store.append("s", [NewEvent(type="note", data={"y": ["\ud800"]})])
    assert store.head()[0] == 0


def test_cli_append_refuses_the_envelope_key(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    r = CliRunner().invoke(
        main, ["--db", db, "append", "--stream", "s", "--type", "note", "--data", '{"x":{"$personal":1}}']
    )
    assert r.exit_code == 2 and "$.data.x.$personal" in r.output and "Traceback" not in r.output


# -- read back whatever is stored -------------------------------------------------------------
def envelope(subject: str, nonce: bytes = b"\0" * 12, ct: bytes = b"\1" * 32) -> dict[str, object]:
    return {
        "$personal": {
            "v": 1,
            "subject": subject,
            "nonce": base64.b64encode(nonce).decode(),
            "ct": base64.b64encode(ct).decode(),
        }
    }


def test_reads_never_raise_on_stored_bytes_and_say_why(store: EventStore) -> None:
    store.append("s1", [NewEvent(type="message.appended", data=MSG, subject="alice")])  # alice has a key
    bad = {
        2: codec.encode({"x": {"$personal": 1}}),  # accepted by older versions
        3: codec.encode({**MSG, "content": envelope("alice")}),  # bogus ciphertext, known subject
        4: codec.encode({**MSG, "content": envelope("nobody")}),  # no key row at all
        5: b"[" * 5000 + b"]" * 5000,  # deeper than any decoder's recursion limit
        6: b'{"x": ',  # not JSON
        7: codec.encode({"c": envelope("alice", ct=b"x")}),  # too short to be a ciphertext
    }
    for position, raw in bad.items():
        append_raw(store, "s1", "message.appended" if position in (3, 4) else "note", raw)
    append_raw(store, "s1", "note", b"{}", b"{not json")  # 8: bad metadata
    store.append("s1", [NewEvent(type="note", data={"after": True})])  # 9: readers go on past them
    events = list(store.read_all())
    assert [e.position for e in events] == list(range(1, 10))
    first, last = events[0], events[-1]
    assert first.unreadable is None and first.data["content"] == "hello"
    assert last.unreadable is None and last.data == {"after": True}
    why = {e.position: e.unreadable for e in events}
    assert "malformed personal-data envelope" in why[2]  # type: ignore[operator]
    assert "does not authenticate" in why[3]  # type: ignore[operator]
    assert "unknown subject 'nobody'" in why[4]  # type: ignore[operator]
    assert "$.data cannot be decoded" in why[5] and "$.data cannot be decoded" in why[6]  # type: ignore[operator]
    assert "malformed" in why[7]  # type: ignore[operator]
    assert "$.metadata cannot be decoded" in why[8]  # type: ignore[operator]
    for e in events[2:4]:  # tampered or foreign, not erased: nothing was erased
        assert e.data["content"] is None and e.erased == []
    assert [e.position for e in store.read_stream("s1")] == list(range(1, 10))
    assert store.verify().ok  # the chain is intact: these bytes are what was appended
    report = store.check_events()
    assert not report.ok and [p.position for p in report.problems] == [2, 3, 4, 5, 6, 7, 8]


def test_cli_read_and_events_check_with_an_unreadable_event(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    with EventStore.open(db) as store:
        append_raw(store, "s", "message.appended", codec.encode({**MSG, "content": envelope("ghost")}))
        store.append("s", [NewEvent(type="note", data={"n": 2})])
    r = CliRunner().invoke(main, ["--db", db, "read"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert "unknown subject" in lines[0]["unreadable"] and lines[1]["unreadable"] is None
    c = CliRunner().invoke(main, ["--db", db, "events", "check"])
    assert c.exit_code == 1 and "unknown subject" in c.output


def test_an_erased_subject_is_not_reported_as_a_problem(store: EventStore) -> None:
    store.append("s1", [NewEvent(type="message.appended", data=MSG, subject="alice")])
    store.erase("alice", requested_by="dpo")
    assert store.check_events().ok
    assert all(e.unreadable is None for e in store.read_all())


def test_a_corrupt_key_row_reads_as_unreadable_not_erased(sqlite_store: EventStore) -> None:
    sqlite_store.append("s1", [NewEvent(type="message.appended", data=MSG, subject="alice")])
    with sqlite_store.backend.transaction() as tx:
        tx.execute("UPDATE subject_keys SET key_hex = 'zz' WHERE subject_id = 'alice'")
    (event,) = sqlite_store.read_all()
    assert event.erased == [] and event.unreadable is not None and "does not authenticate" in event.unreadable


def test_appended_events_near_the_bound_project(tmp_path: Path) -> None:
    """What can be appended can be projected: a tool input as deep as allowed."""
    from projections import run_all

    with EventStore.open(str(tmp_path / "d.db")) as store:
        store.append(
            "s1",
            [
                NewEvent(type="session.started", data={"session_id": "s1"}),
                NewEvent(
                    type="tool.started",
                    data={"session_id": "s1", "execution_id": "e1", "tool_name": "t", "input": nested(63)},
                ),
            ],
        )
        applied = run_all(store)
        assert applied["tool_executions"] == 1 and applied["sessions"] >= 1
        assert os.path.exists(store.backend.path)  # type: ignore[attr-defined]


# -- properties -----------------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=12,
)
_envelope = st.fixed_dictionaries(
    {
        "$personal": st.one_of(
            _json,
            st.fixed_dictionaries(
                {
                    "v": st.sampled_from([1, 2, "1"]),
                    "subject": st.sampled_from(["k", "gone", "nobody", 3]),
                    "nonce": st.one_of(st.text(max_size=20), st.just("AAAAAAAAAAAAAAAA")),
                    "ct": st.one_of(st.text(max_size=40), st.just(base64.b64encode(b"\1" * 40).decode())),
                }
            ),
        )
    }
)


class _Keys:
    """A KeyStore stand-in: 'k' has a key, 'gone' was erased, others were never known."""

    def keys(self, subjects: object) -> dict[str, bytes | None]:
        return {"k": b"\2" * 32, "gone": None}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=40),
        _json.map(codec.encode),
        st.dictionaries(st.text(max_size=4), st.one_of(_json, _envelope), max_size=4).map(codec.encode),
    ),
    metadata=st.one_of(st.just(b"{}"), st.binary(max_size=10), _json.map(codec.encode)),
)
def test_to_recorded_never_raises_on_stored_bytes(data: bytes, metadata: bytes) -> None:
    """Whatever bytes a row holds, decoding returns an event; only intact ones have unreadable None,
    and a field reads as erased only when its subject's key was destroyed."""
    row = Row(1, "s", 1, "note", data, metadata, b"", b"", "t", b"\0" * 32, b"\0" * 32)
    event = to_recorded(row, _Keys())  # type: ignore[arg-type]
    if event.unreadable is None:
        assert event.data is None or type(event.data) is dict
    for field in event.erased:
        assert codec.decode(data)[field]["$personal"]["subject"] == "gone"


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=6), _json, max_size=4))
def test_what_can_be_appended_reads_back_equal(value: dict[str, object]) -> None:
    """Append validation and reading agree: accepted bytes decode to the value given, never unreadable."""
    try:
        raw, _ = codec.encode_object(value, "$.data")
    except InvalidEvent:
        return
    row = Row(1, "s", 1, "note", raw, b"{}", b"", b"", "t", b"\0" * 32, b"\0" * 32)
    event = to_recorded(row, _Keys())  # type: ignore[arg-type]
    assert event.unreadable is None and event.data == value
