"""Erasure by crypto-shredding: the subject's fields disappear, every hash and receipt stays valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore import EventStore, InvalidEvent, NewEvent
from eventstore.cli import main
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
    receipts += sqlite_store.append("s1", [NewEvent(type="message.appended", data=msg(1, "alice's secret"), subject="alice")])
    receipts += sqlite_store.append("s1", [NewEvent(type="message.appended", data=msg(2, "bob's secret"), subject="bob")])
    receipts += sqlite_store.append("s1", [NewEvent(type="note", data={"who": "alice", "text": "x"}, subject="alice",
                                                    personal=("text",))])
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
