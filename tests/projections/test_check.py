"""``projections.check`` / ``eventstore project check``: dangling references are listed, never dropped."""

from __future__ import annotations

import json

from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main
from projections import run_all
from projections.check import check


def _msg(sid: str, mid: str, parent: str | None = None) -> NewEvent:
    data = {"session_id": sid, "message_id": mid, "role": "user", "content": "x"}
    if parent:
        data["parent_id"] = parent
    return NewEvent(type="message.appended", data=data)


def _append_dangling(store: EventStore) -> None:
    store.append("a", [NewEvent(type="session.started", data={"session_id": "ok"}), _msg("ok", "m1")])
    store.append("b", [_msg("ghost", "g1"), _msg("ghost", "g2")])  # a session that never started
    store.append(
        "c",
        [
            NewEvent(type="tool.finished", data={"session_id": "ok", "execution_id": "e9", "status": "failed"}),
            NewEvent(
                type="tool.started",
                data={"session_id": "ok", "execution_id": "e1", "tool_name": "sh", "input": {}, "message_id": "m7"},
            ),
            _msg("ok", "m2", parent="m0"),
            NewEvent(type="session.deleted", data={"session_id": "ok"}),
        ],
    )
    store.append("d", [_msg("ok", "m3")])


def test_check_lists_every_kind_of_dangling_reference(store: EventStore) -> None:
    store.append("a", [NewEvent(type="session.started", data={"session_id": "ok"}), _msg("ok", "m1", parent=None)])
    run_all(store)
    clean = check(store)
    assert clean.ok and set(clean.counts.values()) == {0}
    _append_dangling(store)
    run_all(store)
    report = check(store)
    assert not report.ok
    assert report.counts == {
        "session.never_started": 1,
        "tool.finished_without_start": 1,
        "tool.unknown_message": 1,
        "message.unknown_parent": 1,
        "message.after_delete": 1,
    }
    by_kind = {d.kind: d for d in report.dangling}
    assert by_kind["session.never_started"].session_id == "ghost"
    assert "2 message(s)" in by_kind["session.never_started"].detail
    assert by_kind["tool.finished_without_start"].item_id == "e9"
    assert by_kind["tool.unknown_message"].item_id == "e1" and "'m7'" in by_kind["tool.unknown_message"].detail
    assert by_kind["message.unknown_parent"].item_id == "m2"
    assert by_kind["message.after_delete"].item_id == "m3"
    # the evidence stays in the read models: nothing was dropped
    assert store.backend.query("SELECT status, message_count FROM sessions WHERE session_id = 'ghost'") == [
        ("unknown", 2)
    ]


def test_project_check_cli_exit_codes(tmp_path) -> None:
    db = str(tmp_path / "c.db")
    with EventStore.open(db) as store:
        store.append("a", [NewEvent(type="session.started", data={"session_id": "ok"})])
        run_all(store)
    env = {"EVENTSTORE_DEBUG": "1"}
    r = CliRunner().invoke(main, ["--db", db, "project", "check"], env=env)
    assert r.exit_code == 0 and "no dangling references" in r.stderr, r.output
    with EventStore.open(db) as store:
        _append_dangling(store)
        run_all(store)
    r = CliRunner().invoke(main, ["--db", db, "project", "check"], env=env)
    assert r.exit_code == 1
    assert "session.never_started: session ghost: session referenced by 2 message(s)" in r.stdout
    report = json.loads(CliRunner().invoke(main, ["--db", db, "project", "check", "--json"], env=env).stdout)
    assert report["ok"] is False and report["counts"]["tool.finished_without_start"] == 1
