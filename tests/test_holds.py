"""Legal holds: held events are never pruned, a held subject is not erased unless overridden
(and the override is in the log), placing and releasing are events (docs/operations.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent, retention
from eventstore import holds as holds_
from eventstore.cli import main
from eventstore.errors import LegalHoldActive, UserError

LATER = datetime.now(UTC) + timedelta(days=10_000)


@pytest.fixture(autouse=True)
def _clock_far_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let these tests prune as of ``LATER``: a real prune refuses a ``now`` later than the clock."""
    monkeypatch.setattr(retention, "_latest_now", lambda: datetime(3000, 1, 1, tzinfo=UTC))


def _message(session: str, subject: str | None) -> NewEvent:
    return NewEvent(
        type="message.appended",
        data={"session_id": session, "message_id": "m", "role": "user", "content": f"hello from {subject}"},
        subject=subject,
    )


def _prunable(store: EventStore) -> None:
    retention.set_floor(store, "0s", by="ops")
    retention.set_policy(store, streams="agent-*", keep="0s", by="ops")


def test_held_streams_are_never_pruned_until_released(store: EventStore) -> None:
    store.append("agent-1", [NewEvent(type="note", data={"i": 1})] * 3)
    store.append("agent-2", [NewEvent(type="note", data={"i": 2})] * 2)
    _prunable(store)
    hold = holds_.place(store, streams="agent-1", reason="case 12-345", by="legal")
    report = retention.prune(store, now=LATER)
    assert report.count == 2 and report.held == 3
    assert all(not e.pruned and e.data == {"i": 1} for e in store.read_stream("agent-1"))
    released = holds_.release(store, hold.id, by="legal", reason="case closed")
    assert released.released_by == "legal" and not released.active
    assert retention.prune(store, now=LATER).count == 3
    assert [(e.type, e.data["by"]) for e in store.read_stream("holds")] == [
        ("hold.placed", "legal"),
        ("hold.released", "legal"),
    ]
    assert store.verify().ok


def test_a_held_subjects_events_are_not_pruned(store: EventStore) -> None:
    store.append("agent-1", [_message("s1", "alice"), _message("s1", "bob"), _message("s1", None)])
    _prunable(store)
    holds_.place(store, subject="alice", reason="litigation", by="legal")
    assert retention.prune(store, now=LATER).count == 2
    kept = [e for e in store.read_stream("agent-1") if not e.pruned]
    assert [e.data["content"] for e in kept] == ["hello from alice"]


def test_erasing_a_held_subject_is_refused_with_the_reason_and_writes_nothing(store: EventStore) -> None:
    store.append("agent-1", [_message("s1", "alice")])
    holds_.place(store, subject="alice", reason="litigation 42", by="legal")
    head = store.head()
    with pytest.raises(LegalHoldActive, match=r"legal hold hold-\w+ \('litigation 42'"):
        store.erase("alice", requested_by="dpo")
    assert store.head() == head
    assert next(store.read_stream("agent-1")).data["content"] == "hello from alice"  # the key is intact
    holds_.place(store, streams="erasure-b*", reason="freeze erasures", by="legal")  # a stream hold on erasures
    with pytest.raises(LegalHoldActive, match="freeze erasures"):
        store.erase("bob", requested_by="dpo")


def test_a_stream_hold_refuses_erasing_a_subject_with_personal_fields_in_held_streams(store: EventStore) -> None:
    store.append("agent-7/s1", [_message("s1", "dave")])
    store.append("agent-8/s1", [_message("s2", "erin")])
    hold = holds_.place(store, streams="agent-7/*", reason="case 12", by="legal")
    head = store.head()
    with pytest.raises(LegalHoldActive, match=r"case 12.*holds streams 'agent-7/\*'"):
        store.erase("dave", requested_by="dpo")
    assert store.head() == head
    assert next(store.read_stream("agent-7/s1")).data["content"] == "hello from dave"  # the key is intact
    store.erase("erin", requested_by="dpo")  # nothing of erin's is held
    assert next(store.read_stream("agent-8/s1")).erased == ["content"]
    store.erase("dave", requested_by="dpo", override_hold="court order 9")
    (over,) = [e for e in store.read_stream("holds") if e.type == "hold.overridden"]
    assert over.data["hold_id"] == hold.id and over.data["subject_id"] == "dave"


def test_an_override_is_recorded_in_the_erasures_transaction(store: EventStore) -> None:
    store.append("agent-1", [_message("s1", "alice")])
    hold = holds_.place(store, subject="alice", reason="litigation", by="legal")
    receipt = store.erase("alice", requested_by="dpo", override_hold="court order 7 lifts the hold")
    events = {e.type: e for e in store.read_all()}
    over = events["hold.overridden"]
    assert over.data == {
        "hold_id": hold.id,
        "subject_id": "alice",
        "operation": "erase",
        "reason": "court order 7 lifts the hold",
        "by": "dpo",
    }
    assert over.recorded_at == receipt.recorded_at  # one commit
    assert events["message.appended"].erased == ["content"]
    assert hold.id in [h.id for h in holds_.holds(store, active_only=True)]  # the hold itself stays


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"streams": "a", "subject": "b", "reason": "r"}, "exactly one of"),
        ({"reason": "r"}, "exactly one of"),
        ({"streams": "", "reason": "r"}, "must not be empty"),
        ({"streams": "a", "reason": "  "}, "must not be empty"),
    ],
)
def test_bad_holds_are_refused_and_write_nothing(
    sqlite_store: EventStore, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        holds_.place(sqlite_store, by="legal", **kwargs)
    assert sqlite_store.head()[0] == 0 and holds_.holds(sqlite_store) == []
    with pytest.raises(UserError, match="no legal hold with id 'hold-nope'"):
        holds_.release(sqlite_store, "hold-nope", by="legal")


def test_cli_hold_and_erase(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    with EventStore.open(db) as store:
        store.append("agent-1", [_message("s1", "carol")])
    run = CliRunner()
    r = run.invoke(main, ["--db", db, "hold", "place", "--subject", "carol", "--reason", "case 9", "--by", "legal"])
    assert r.exit_code == 0
    hold_id = r.stdout.splitlines()[0]
    listed = [json.loads(x) for x in run.invoke(main, ["--db", db, "hold", "list", "--json"]).stdout.splitlines()]
    assert [(h["id"], h["active"], h["reason"]) for h in listed] == [(hold_id, True, "case 9")]
    r = run.invoke(main, ["--db", db, "erase", "--subject", "carol", "--requested-by", "dpo"])
    assert r.exit_code == 2 and "case 9" in r.output and "Traceback" not in r.output
    r = run.invoke(
        main, ["--db", db, "erase", "--subject", "carol", "--requested-by", "dpo", "--override-hold", "court order"]
    )
    assert r.exit_code == 0, r.output
    assert run.invoke(main, ["--db", db, "hold", "release", hold_id, "--by", "legal"]).exit_code == 0
    r = run.invoke(main, ["--db", db, "hold", "release", hold_id])
    assert r.exit_code == 2 and "released already" in r.output
    assert run.invoke(main, ["--db", db, "hold", "list", "--active"]).stdout == ""


def test_a_hold_placed_while_prune_runs_is_honoured_from_its_next_batch(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections.abc import Iterator
    from contextlib import contextmanager
    from typing import Any

    store.append("agent-1", [_message("s1", "alice"), _message("s1", "bob")] * 3)
    _prunable(store)
    real = store.backend.transaction
    calls = []

    @contextmanager
    def transaction() -> Iterator[Any]:
        calls.append(1)
        if len(calls) == 3:  # after the run's start and the first batch: a hold arrives
            holds_.place(store, subject="alice", reason="late case", by="legal")
        with real() as tx:
            yield tx

    monkeypatch.setattr(store.backend, "transaction", transaction)
    report = retention.prune(store, now=LATER, batch_size=2)
    contents = [(e.position, e.pruned) for e in store.read_stream("agent-1")]
    assert contents == [(1, True), (2, True), (3, False), (4, True), (5, False), (6, True)]
    assert report.count == 4 and report.held == 2
