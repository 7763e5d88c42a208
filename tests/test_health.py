"""``EventStore.health()``, ``eventstore health`` and read-only opens refusing writes."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent, ReadOnlyStore, UserError
from eventstore.cli import main
from projections import run_all

ENV = {"EVENTSTORE_DEBUG": "1"}


def _session(store: EventStore, sid: str) -> None:
    store.append(f"session-{sid}", [NewEvent(type="session.started", data={"session_id": sid, "task": "t"})])


def test_health_of_a_working_store(backend_url: str) -> None:
    with EventStore.open(backend_url) as store:
        _session(store, "1")
        run_all(store)
        _session(store, "2")
        h = store.health()
        assert h.ok and h.reachable and h.writable and not h.readonly and h.problems == []
        assert h.schema_current and h.schema_version == h.schema_latest >= 7
        assert h.head_position == 2
        assert h.projection_lag["sessions"] == 1 and h.max_projection_lag == 1
        assert not store.health(max_lag=0).ok  # lag judged only when asked
        assert "sessions is 1 events behind" in " ".join(store.health(max_lag=0).problems)
    with EventStore.open(backend_url, readonly=True) as ro:
        h = ro.health()
        assert h.ok and h.readonly and h.writable and h.head_position == 2  # a read-write open could append


def test_readonly_open_refuses_every_write_with_one_error_and_reads_still_work(backend_url: str) -> None:
    with EventStore.open(backend_url) as store:
        _session(store, "1")
    with EventStore.open(backend_url, readonly=True) as ro:
        for write in (
            lambda: ro.append("s", [NewEvent(type="note", data={})]),
            lambda: ro.append_many([("s", [NewEvent(type="note", data={})], None)]),
            lambda: ro.erase("alice", requested_by="dpo"),
        ):
            with pytest.raises(ReadOnlyStore, match="read-only") as info:
                write()
            assert isinstance(info.value, UserError)  # the CLI: one line, exit 2
        assert ro.verify().ok and [e.position for e in ro.read_all()] == [1]
        assert ro.check_events().ok
    with EventStore.open(backend_url) as store:
        assert store.head()[0] == 1


def test_health_reports_a_schema_behind_and_a_stopped_read_model(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with EventStore.open(db) as store:
        _session(store, "1")
        run_all(store)
    c = sqlite3.connect(db)
    c.execute("UPDATE projection_state SET state = 'failed' WHERE name = 'messages'")
    c.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    c.commit()
    c.close()
    with EventStore.open(db, migrate=False, readonly=True) as store:
        h = store.health()
    assert not h.ok and not h.schema_current and h.schema_version == h.schema_latest - 1
    text = " ".join(h.problems)
    assert "run 'eventstore migrate up'" in text and "read model messages stopped (failed)" in text


def test_health_of_a_database_that_refuses_appends(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with EventStore.open(db) as store:
        _session(store, "1")
    os.chmod(tmp_path, 0o555)  # no -wal/-shm can be made beside it
    os.chmod(db, 0o444)
    try:
        if os.access(db, os.W_OK):
            pytest.skip("this user (root) writes read-only files")
        r = CliRunner().invoke(main, ["--db", str(db), "health", "--json"], env=ENV)
        h = json.loads(r.stdout)
        assert r.exit_code == 1 and not h["writable"] and "does not accept appends" in " ".join(h["problems"])
        r = CliRunner().invoke(main, ["--db", str(db), "health", "--read-only-ok"], env=ENV)
        assert r.exit_code == 0 and "refuses appends" in r.stdout, r.output
    finally:
        os.chmod(tmp_path, 0o755)
        os.chmod(db, 0o644)


def test_writable_reflects_file_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also as root (who may write any file): the check asks os.access, which is what SQLite meets."""
    db = tmp_path / "w.db"
    with EventStore.open(db) as store:
        _session(store, "1")
        monkeypatch.setattr(os, "access", lambda path, mode: False)
        h = store.health()
        assert not h.ok and not h.writable and "does not accept appends" in " ".join(h.problems)
        assert store.health(require_writable=False).ok


def test_health_cli_exit_codes(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    r = CliRunner().invoke(main, ["--db", db, "health"], env=ENV)
    assert r.exit_code == 1 and r.stdout.startswith("UNHEALTHY") and "cannot open the store" in r.stdout
    assert not os.path.exists(db)  # a probe never creates a database
    with EventStore.open(db) as store:
        _session(store, "1")
    r = CliRunner().invoke(main, ["--db", db, "health"], env=ENV)
    assert r.exit_code == 0 and r.stdout.startswith("healthy: sqlite, head 1"), r.output
    h = json.loads(CliRunner().invoke(main, ["--db", db, "health", "--json"], env=ENV).stdout)
    assert h["ok"] is True and h["head_position"] == 1 and h["schema_current"] is True
    r = CliRunner().invoke(main, ["--db", str(tmp_path / "nope" / "x.db"), "health", "--json"], env=ENV)
    assert r.exit_code == 1 and json.loads(r.stdout)["reachable"] is False
