"""Versioned migrations: ordering, checksums, destructive guard, rollback (packaging: test_packaging.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eventstore import EventStore, MigrationError
from eventstore.backends.sqlite import SQLiteBackend
from eventstore.migrate import Migrator, migrations_dir

ADD_TABLE = """-- destructive: false
-- down-destructive: true
-- up
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
-- down
DROP TABLE notes;
"""
DROP_COLUMN = """-- destructive: true
-- up
ALTER TABLE notes DROP COLUMN body;
-- down
ALTER TABLE notes ADD COLUMN body TEXT;
"""


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    shutil.copy(migrations_dir("sqlite") / "0001_events.sql", d)
    (d / "0002_notes.sql").write_text(ADD_TABLE)
    return d


def test_up_applies_in_order_and_records_checksums(tmp_path: Path, mdir: Path) -> None:
    b = SQLiteBackend(str(tmp_path / "m.db"))
    m = Migrator(b, mdir)
    assert [x.version for x in m.plan()] == [1, 2]
    assert [x.version for x in m.up()] == [1, 2]
    assert m.plan() == []
    assert [(s.version, s.state) for s in m.status()] == [(1, "applied"), (2, "applied")]
    assert all(len(a.checksum) == 64 for a in b.applied_migrations())
    b.close()


def test_a_changed_file_is_refused(tmp_path: Path, mdir: Path) -> None:
    b = SQLiteBackend(str(tmp_path / "m.db"))
    Migrator(b, mdir).up()
    (mdir / "0002_notes.sql").write_text(ADD_TABLE.replace("body TEXT", "body BLOB"))
    with pytest.raises(MigrationError, match="0002_notes was changed after it was applied"):
        Migrator(b, mdir).up()
    b.close()


def test_destructive_needs_permission_and_down_rolls_back_the_last(tmp_path: Path, mdir: Path) -> None:
    (mdir / "0003_drop_body.sql").write_text(DROP_COLUMN)
    b = SQLiteBackend(str(tmp_path / "m.db"))
    m = Migrator(b, mdir)
    with pytest.raises(MigrationError, match="0003_drop_body is destructive; run it with --allow-destructive"):
        m.up()
    assert b.applied_migrations() == []  # nothing applied when the plan contains a refused step
    m.up(allow_destructive=True)
    assert [a.version for a in b.applied_migrations()] == [1, 2, 3]
    assert m.down().version == 3  # type: ignore[union-attr]
    assert b.query("SELECT body FROM notes") == []  # column is back
    with pytest.raises(MigrationError, match="deletes data; run it with --allow-destructive"):
        m.down()
    assert m.down(allow_destructive=True).version == 2  # type: ignore[union-attr]
    assert [a.version for a in b.applied_migrations()] == [1]
    b.close()


def test_gaps_in_numbering_are_refused(tmp_path: Path, mdir: Path) -> None:
    (mdir / "0002_notes.sql").rename(mdir / "0003_notes.sql")
    b = SQLiteBackend(str(tmp_path / "m.db"))
    with pytest.raises(MigrationError, match="without gaps"):
        Migrator(b, mdir)
    b.close()


def test_open_refuses_a_database_from_a_newer_eventstore(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    EventStore.open(path).close()
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x', 'now')")
    conn.commit()
    conn.close()
    with pytest.raises(MigrationError, match="upgrade eventstore"):
        EventStore.open(path)


def test_migrate_cli_up_and_down(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from eventstore.cli import main

    db = str(tmp_path / "c.db")
    r = CliRunner().invoke(main, ["--db", db, "migrate", "up"])
    assert r.exit_code == 0 and "applied 0001_events" in r.stdout
    n = len(Migrator(SQLiteBackend(db)).available)
    r = CliRunner().invoke(main, ["--db", db, "migrate", "down"])
    if Migrator(SQLiteBackend(db)).available[n - 1].down_destructive:
        assert r.exit_code == 2 and "--allow-destructive" in r.stderr
        r = CliRunner().invoke(main, ["--db", db, "migrate", "down", "--allow-destructive"])
    assert r.exit_code == 0 and "rolled back" in r.stdout
    assert "pending" in CliRunner().invoke(main, ["--db", db, "migrate", "status"]).stdout
