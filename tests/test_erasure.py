"""Erasure by crypto-shredding: the subject's fields disappear, every hash and receipt stays valid."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventstore import EventStore, InvalidEvent, NewEvent, catalogue
from eventstore.cli import main
from eventstore.errors import BackendError, EventTooLarge
from eventstore.shredding import SubjectErased


def msg(i: int, content: str) -> dict[str, object]:
    return {"session_id": "s1", "message_id": f"m{i}", "role": "user", "content": content}


def test_personal_fields_are_stored_encrypted_and_read_in_clear(sqlite_store: EventStore) -> None:
    sqlite_store.append("s1", [NewEvent(type="message.appended", data=msg(1, "my phone is 555-0101"), subject="alice")])
    row = sqlite_store.backend.row_at(1)
    assert row is not None and b"555-0101" not in row.data and b"$personal" in row.data  # type: ignore[operator]
    (event,) = sqlite_store.read_all()
    assert event.data["content"] == "my phone is 555-0101" and event.erased == []


def test_erase_keeps_the_chain_and_receipts_and_hides_the_fields(sqlite_store: EventStore) -> None:
    receipts = []
    receipts += sqlite_store.append(
        "s1", [NewEvent(type="message.appended", data=msg(1, "alice's secret"), subject="alice")]
    )
    receipts += sqlite_store.append(
        "s1", [NewEvent(type="message.appended", data=msg(2, "bob's secret"), subject="bob")]
    )
    receipts += sqlite_store.append(
        "s1", [NewEvent(type="note", data={"who": "alice", "text": "x"}, subject="alice", personal=("text",))]
    )
    before = sqlite_store.verify()
    erasure = sqlite_store.erase("alice", requested_by="dpo@example.com", reason="GDPR art. 17")
    assert erasure.position == 4
    after = sqlite_store.verify()
    assert after.ok and after.checked == 4 and before.ok
    assert all(sqlite_store.verify_receipt(r).ok for r in receipts)
    events = list(sqlite_store.read_all())
    assert events[0].data["content"] is None and events[0].erased == ["content"]
    assert events[1].data["content"] == "bob's secret" and events[1].erased == []
    assert events[2].data == {"who": "alice", "text": None} and events[2].erased == ["text"]
    assert events[3].type == "subject.erased"
    assert events[3].data == {"subject_id": "alice", "requested_by": "dpo@example.com", "reason": "GDPR art. 17"}
    with pytest.raises(SubjectErased, match="'alice' was erased"):
        sqlite_store.append("s1", [NewEvent(type="message.appended", data=msg(3, "again"), subject="alice")])


def test_personal_fields_need_a_subject(sqlite_store: EventStore) -> None:
    with pytest.raises(InvalidEvent, match="need a subject"):
        sqlite_store.append("s", [NewEvent(type="note", data={"text": "x"}, personal=("text",))])
    assert sqlite_store.head()[0] == 0


@pytest.mark.parametrize(
    ("type_", "data", "personal"),
    [
        ("note", {"text": "x"}, None),  # the type declares no personal field
        ("note", {"text": "x"}, ("email",)),  # the named field is absent
        ("tool.finished", {"session_id": "s", "execution_id": "e", "status": "completed", "output": None}, None),
    ],
)
def test_a_subject_without_personal_fields_is_refused(
    sqlite_store: EventStore, type_: str, data: dict[str, object], personal: tuple[str, ...] | None
) -> None:
    with pytest.raises(
        InvalidEvent, match=r"\$\.subject.*subject 'alice' is given, but the event has no personal field"
    ):
        sqlite_store.append("s", [NewEvent(type=type_, data=data, subject="alice", personal=personal)])
    assert sqlite_store.head()[0] == 0


def test_erase_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "e.db")
    with EventStore.open(db) as store:
        store.append("s1", [NewEvent(type="message.appended", data=msg(1, "hello"), subject="carol")])
    r = CliRunner().invoke(main, ["--db", db, "erase", "--subject", "carol", "--requested-by", "support"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["position"] == 2
    assert CliRunner().invoke(main, ["--db", db, "verify"]).exit_code == 0
    first = json.loads(CliRunner().invoke(main, ["--db", db, "read", "--limit", "1"]).stdout)
    assert first["data"]["content"] is None and first["erased"] == ["content"]


# -- erase is all or nothing --------------------------------------------------------------------
def key_of(store: EventStore, subject: str) -> str | None:
    rows = store.backend.query("SELECT key_hex FROM subject_keys WHERE subject_id = ?", (subject,))
    return rows[0][0] if rows else None


def assert_untouched(store: EventStore, head: int, key: str | None) -> None:
    assert store.head()[0] == head and key_of(store, "alice") == key
    assert next(store.read_all()).data["content"] == "alice's secret"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"subject": "alice", "requested_by": "dpo", "reason": "bad \udc80 reason"}, InvalidEvent),
        ({"subject": "alice", "requested_by": "dpo", "reason": "x" * (2 << 20)}, EventTooLarge),
        ({"subject": "alice", "requested_by": "d\ud800"}, InvalidEvent),
        ({"subject": "alice", "requested_by": ""}, InvalidEvent),
        ({"subject": "alice", "requested_by": "dpo", "reason": 42}, InvalidEvent),
    ],
)
def test_erase_refuses_bad_arguments_before_touching_the_key(
    store: EventStore, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    store.append("s1", [NewEvent(type="message.appended", data=msg(1, "alice's secret"), subject="alice")])
    key = key_of(store, "alice")
    assert key is not None
    with pytest.raises(error):
        store.erase(**kwargs)
    assert_untouched(store, 1, key)


def test_erase_of_a_subject_id_too_long_for_its_stream_name(store: EventStore) -> None:
    """A subject id of up to 512 bytes can be written, so it can be erased (the old code lost the
    key and wrote no record: "erasure-" + 505 bytes is not a valid stream id)."""
    subject = "s" * 512
    store.append("s1", [NewEvent(type="message.appended", data=msg(1, "secret"), subject=subject)])
    receipt = store.erase(subject, requested_by="dpo")
    assert receipt.stream_id == "erasure-sha256-" + hashlib.sha256(subject.encode()).hexdigest()
    first, record = store.read_all()
    assert first.erased == ["content"] and record.data["subject_id"] == subject
    assert store.erase("a" * 504, requested_by="dpo").stream_id == "erasure-" + "a" * 504


def writer_class(store: EventStore) -> type:
    with store.backend.write() as w:
        return type(w)


@pytest.mark.parametrize("fail", ["insert", "execute"])
def test_a_failing_erase_transaction_keeps_the_key_and_writes_no_record(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    store.append("s1", [NewEvent(type="message.appended", data=msg(1, "alice's secret"), subject="alice")])
    key = key_of(store, "alice")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(writer_class(store), fail, boom)
        with pytest.raises(BackendError, match="nothing was written"):
            store.erase("alice", requested_by="dpo")
    assert_untouched(store, 1, key)
    store.erase("alice", requested_by="dpo")  # and once the fault is gone, both happen
    assert key_of(store, "alice") is None and store.head()[0] == 2
    assert next(store.read_all()).erased == ["content"]


def test_a_failing_commit_keeps_the_key_on_sqlite(sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is destroyed by the append transaction itself: when its COMMIT fails, nothing changed."""
    sqlite_store.append("s1", [NewEvent(type="message.appended", data=msg(1, "alice's secret"), subject="alice")])
    key = key_of(sqlite_store, "alice")
    cls = writer_class(sqlite_store)
    original = cls.execute

    def then_lock(self: Any, sql: str, params: Any = ()) -> None:
        original(self, sql, params)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(cls, "execute", then_lock)
    with pytest.raises(BackendError):
        sqlite_store.erase("alice", requested_by="dpo")
    assert_untouched(sqlite_store, 1, key)


# -- every personal field of the catalogue -------------------------------------------------------
SAMPLES: dict[str, dict[str, Any]] = {
    "session.started": {"session_id": "s1", "name": "P-name", "task": "P-task"},
    "session.updated": {"session_id": "s1", "name": "P-name2", "task": "P-task2"},
    "message.appended": {"session_id": "s1", "message_id": "m1", "role": "user", "content": "P-content"},
    "tool.started": {"session_id": "s1", "execution_id": "e1", "tool_name": "t", "input": {"q": "P-input"}},
    "tool.finished": {
        "session_id": "s1",
        "execution_id": "e1",
        "status": "failed",
        "output": ["P-output"],
        "error": "P-error",
    },
    "memory.set": {"agent": "a1", "key": "k", "value": {"note": "P-value"}},  # workspaces, instances, memory
}


def documented_personal_fields() -> dict[str, set[str]]:
    """The personal fields docs/events.md promises, parsed from its list (independent of the code)."""
    text = (Path(__file__).parent.parent / "docs" / "events.md").read_text()
    para = text[text.index("Fields of an event can be marked personal") :]
    para = para[: para.index("or per append")]
    out: dict[str, set[str]] = {}
    for part in para[para.index("(") + 1 :].split(";"):
        type_, _, fields = part.partition(":")
        out[type_.strip().strip("`")] = set(re.findall(r"`([^`]+)`", fields))
    return out


def test_every_personal_field_reads_as_erased_in_reads_and_rebuilt_read_models(store: EventStore) -> None:
    from projections import run_all

    documented = documented_personal_fields()
    assert documented == {t: set(f) for t, f in catalogue.PERSONAL.items()}, "catalogue and docs disagree"
    assert set(SAMPLES) == set(catalogue.PERSONAL), "add a sample for the new personal event type"
    for type_, data in SAMPLES.items():
        for field in catalogue.PERSONAL[type_]:
            assert "P-" in json.dumps(data.get(field)), f"sample for {type_} must set personal field {field}"
    store.append("s1", [NewEvent(type=t, data=d, subject="alice") for t, d in SAMPLES.items()])
    run_all(store)
    models = ("sessions", "messages", "tool_executions", "agent_memory")

    def model_text() -> str:
        return json.dumps([store.backend.query(f"SELECT * FROM {m}") for m in models], default=str)

    assert "P-content" in model_text() and "P-input" in model_text() and "P-value" in model_text()  # they held them
    store.erase("alice", requested_by="dpo")
    for event in list(store.read_all())[:-1]:
        personal = set(documented[event.type])
        assert set(event.erased) == personal, event.type
        assert all(event.data[f] is None for f in personal)
        assert "P-" not in json.dumps(event.data)
    run_all(store)  # meets subject.erased: rebuilds the personal read models
    assert "P-" not in model_text()


# -- nothing of the key left in the SQLite files ---------------------------------------------------
def file_bytes(db: str) -> bytes:
    return b"".join(Path(db + suffix).read_bytes() for suffix in ("", "-wal", "-shm") if Path(db + suffix).exists())


def copies(blob: bytes, key_hex: str) -> int:
    key = bytes.fromhex(key_hex)
    return sum(blob.count(k) for k in (key_hex.encode(), key_hex.upper().encode(), key))


@pytest.mark.parametrize("other", ["connection", "process"])
def test_no_copy_of_the_key_remains_in_the_sqlite_files(tmp_path: Path, other: str) -> None:
    """Another connection keeps the file open (so the WAL is not removed on close), as another
    process using the store would: after erase, no file of the store holds the key."""
    from projections import run_all

    db = str(tmp_path / "k.db")
    with EventStore.open(db) as store:
        store.append("s1", [NewEvent(type="session.started", data={"session_id": "s1"})])
        for i in range(50):
            store.append("s1", [NewEvent(type="message.appended", data=msg(i, f"PLAIN-{i}-secret"), subject="alice")])
            store.append("s1", [NewEvent(type="message.appended", data=msg(1000 + i, "bob"), subject=f"bob{i}")])
        run_all(store)
        key_hex = key_of(store, "alice")
        assert key_hex is not None
        if other == "connection":
            holder: Any = sqlite3.connect(db)
            holder.execute("SELECT count(*) FROM events").fetchone()  # opened, used, idle
        else:
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        try:
            assert copies(file_bytes(db), key_hex) > 0  # the scan does find it while it exists
            store.erase("alice", requested_by="dpo")
            assert not store.residue_pending
            assert copies(file_bytes(db), key_hex) == 0
            assert b"PLAIN-" in file_bytes(db)  # the read models still hold plaintext until rebuilt
            run_all(store)  # rebuilds the personal read models (drops the old generation)
            assert not store.residue_pending
            assert b"PLAIN-" not in file_bytes(db)
            assert copies(file_bytes(db), key_hex) == 0
        finally:
            if other == "connection":
                holder.close()
            else:
                holder.communicate(b"")


HOLDER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("SELECT count(*) FROM events").fetchone()
print("open", flush=True)
sys.stdin.read()
"""


def test_erase_vacuums_the_key_out_of_the_postgres_table_file(request: pytest.FixtureRequest) -> None:
    """On PostgreSQL the UPDATE leaves the key in a dead row version: erase vacuums it away.
    (WAL keeps it until recycled: docs/events.md says what remains.)"""
    from tests import pg_cluster

    with EventStore.open(pg_cluster.fresh_database_url(request)) as store:
        for i in range(20):
            store.append("s1", [NewEvent(type="message.appended", data=msg(i, "x"), subject=f"bob{i}")])
        store.append("s1", [NewEvent(type="message.appended", data=msg(99, "alice's secret"), subject="alice")])
        key_hex = key_of(store, "alice")
        assert key_hex is not None
        rows = store.backend.query("SELECT current_setting('data_directory'), pg_relation_filepath('subject_keys')")
        path = Path(rows[0][0]) / rows[0][1]

        def on_disk() -> int:
            with store.backend.transaction() as tx:  # flush shared buffers to the table's file
                tx.execute("CHECKPOINT")
            return copies(
                Path(rows[0][0], store.backend.query("SELECT pg_relation_filepath('subject_keys')")[0][0]).read_bytes(),
                key_hex,
            )

        if not os.access(path, os.R_OK):
            pytest.skip("the server's files are not readable by this user")
        assert on_disk() == 1
        store.erase("alice", requested_by="dpo")
        assert not store.residue_pending
        assert on_disk() == 0


@pytest.mark.slow
def test_a_reader_on_an_old_snapshot_delays_the_purge_until_close(tmp_path: Path) -> None:
    """The WAL cannot be emptied under a reader of an older snapshot: erase still commits, says
    so (residue_pending), and the store finishes the purge on close once the reader is gone."""
    db = str(tmp_path / "r.db")
    store = EventStore.open(db)
    store.append("s1", [NewEvent(type="message.appended", data=msg(1, "secret"), subject="alice")])
    key_hex = key_of(store, "alice")
    assert key_hex is not None
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM subject_keys").fetchone()  # holds its snapshot
    store.erase("alice", requested_by="dpo")
    assert store.residue_pending and key_of(store, "alice") is None
    reader.execute("COMMIT")  # the reader is done but keeps the file open: no checkpoint on last close
    store.close()
    assert copies(file_bytes(db), key_hex) == 0
    reader.close()
