"""Backups, restores and maintenance (eventstore.backup, docs/operations.md).

A backup taken while others append is a verified, committed prefix of the log; a restore that
would roll history back behind a checkpoint the store or an auditor saw is refused unless
forced, and every restore is recorded in the restored log.
"""

from __future__ import annotations

import base64
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore import backup as backup_mod
from eventstore.audit import notes
from eventstore.audit.state import AuditorState, save_state
from eventstore.backup import RestoreRefused, backup, maintain, restore
from eventstore.cli import main
from eventstore.errors import UserError, VerificationError

ORIGIN = "example.com/log"


def _fill(store: EventStore, n: int, stream: str = "s", marker: str = "x") -> None:
    for i in range(n):
        store.append(stream, [NewEvent(type="note", data={"i": i, "marker": marker, "pad": "p" * 200})])


def _rows(path: Path) -> list[tuple[int, str]]:
    with EventStore.open(path, readonly=True) as s:
        return [(e.position, e.hash) for e in s.read_all()]


def _restored_events(path: Path) -> list[dict[str, Any]]:
    with EventStore.open(path, readonly=True) as s:
        return [e.data for e in s.read_stream("maintenance")]


# -- backup ---------------------------------------------------------------------------
def test_backup_while_appending_is_a_verified_committed_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends between the copy's steps (by another connection) neither restart the copy nor
    enter it: the copy is the log as of one commit, and it verifies."""
    monkeypatch.setattr(backup_mod, "PAGES_PER_STEP", 2)
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 200)
        steps: list[tuple[int, int]] = []

        def step(done: int, total: int) -> None:
            steps.append((done, total))
            assert len(steps) < 10_000, "the copy keeps restarting"
            store.append("agent", [NewEvent(type="note", data={"during": len(steps)})])

        report = backup(store, tmp_path / "b.db", progress=step)
        head_after = store.head()[0]
    assert len(steps) > 5  # the copy took several steps, each with an append in between
    assert report.head_position == 200 < head_after
    assert report.entries_verified == 200
    copy, live = _rows(tmp_path / "b.db"), _rows(db)
    assert copy == live[: len(copy)]  # a prefix of the live log, entry for entry
    assert report.head_hash == copy[-1][1]
    with EventStore.open(tmp_path / "b.db", readonly=True) as s:
        assert s.verify().ok
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("b.db")) == ["b.db"]  # one file


def _appender(db: str, stop: Any) -> None:
    with EventStore.open(db) as store:
        while not stop.is_set():
            store.append("proc", [NewEvent(type="note", data={"pad": "q" * 300})])


@pytest.mark.slow
def test_backup_while_another_process_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_mod, "PAGES_PER_STEP", 4)
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 300)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_appender, args=(str(db), stop))
    proc.start()
    try:
        with EventStore.open(db, readonly=True) as store:
            while store.head()[0] < 320:  # the other process is appending
                pass
            reports = [backup(store, tmp_path / f"b{i}.db") for i in range(3)]
    finally:
        stop.set()
        proc.join(10)
    live = _rows(db)
    for i, r in enumerate(reports):
        copy = _rows(tmp_path / f"b{i}.db")
        assert r.head_position >= 320 and copy == live[: r.head_position]


_SLOW_BACKUP = """
import sys, time
from eventstore import EventStore, backup as b
b.PAGES_PER_STEP = 1
def step(done, total):
    print("step", done, total, flush=True)
    time.sleep(0.02)
with EventStore.open(sys.argv[1]) as store:
    b.backup(store, sys.argv[2], force=True, progress=step)
"""


@pytest.mark.slow
def test_backup_killed_midway_leaves_the_store_and_an_older_backup_intact(tmp_path: Path) -> None:
    """SIGKILL during the copy: the live store still verifies, a previous backup under the
    target's name is untouched (the copy goes to a temporary file renamed only once verified),
    and running the backup again succeeds."""
    import subprocess
    import sys

    db, target = tmp_path / "live.db", tmp_path / "b.db"
    with EventStore.open(db) as store:
        _fill(store, 50)
        backup(store, target)
        _fill(store, 150, marker="later")
    before = target.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_BACKUP, str(db), str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for _ in range(5):  # the copy is under way
        assert proc.stdout.readline().startswith("step")
    proc.kill()
    proc.wait()
    assert target.read_bytes() == before
    with EventStore.open(db, readonly=True) as s:
        assert s.verify().ok and s.head()[0] == 200
    with EventStore.open(db) as store:
        report = backup(store, target, force=True)
    assert report.head_position == 200 and report.entries_verified == 200


def test_backup_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "live.db") as store:
        _fill(store, 3)
        target = tmp_path / "b.db"
        target.write_bytes(b"precious")
        with pytest.raises(UserError, match="exists.*--force"):
            backup(store, target)
        assert target.read_bytes() == b"precious"
        report = backup(store, target, force=True)
    assert report.head_position == 3 and _rows(target)[-1][0] == 3
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


def test_backup_records_the_newest_checkpoint(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "live.db") as store:
        _fill(store, 4)
        cp = store.checkpoint(notes.Signer.generate(ORIGIN))
        _fill(store, 2)
        report = backup(store, tmp_path / "b.db")
    assert report.checkpoint is not None
    assert (report.checkpoint.origin, report.checkpoint.tree_size) == (ORIGIN, 4)
    assert report.checkpoint.root == cp.checkpoint.root.hex()
    assert report.head_position == 6


def _edit_payload(db: Path, position: int) -> None:
    """An attacker with the file changes a stored payload (the hash no longer matches it)."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET data = CAST('{\"forged\":1}' AS BLOB) WHERE position = ?", (position,))
    conn.commit()
    conn.close()


def test_backup_verified_since_its_checkpoint_rehashes_only_the_new_entries(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 40)
        store.checkpoint(notes.Signer.generate(ORIGIN))
        _fill(store, 3)
        quick = backup(store, tmp_path / "quick.db", verify="checkpoint")
        full = backup(store, tmp_path / "full.db")
    assert (quick.verified_from, quick.entries_verified, quick.head_position) == (41, 3, 43)
    assert (full.verified_from, full.entries_verified) == (1, 43)
    assert quick.head_hash == full.head_hash and _rows(tmp_path / "quick.db") == _rows(db)


def test_backup_verified_since_a_checkpoint_without_one_is_a_full_check(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "live.db") as store:
        _fill(store, 5)
        report = backup(store, tmp_path / "b.db", verify="checkpoint")
    assert (report.verified_from, report.entries_verified) == (1, 5)


def test_backup_verified_since_its_checkpoint_refuses_an_edit_after_it(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 20)
        store.checkpoint(notes.Signer.generate(ORIGIN))
        _fill(store, 5)
    _edit_payload(db, 23)
    with EventStore.open(db, readonly=True) as store, pytest.raises(VerificationError, match="position 23"):
        backup(store, tmp_path / "b.db", verify="checkpoint")
    assert not (tmp_path / "b.db").exists()


def test_backup_verified_since_its_checkpoint_refuses_a_rewrite_of_its_frontier(tmp_path: Path) -> None:
    """The checkpoint's frontier comes from stored nodes: a planted node does not hash to the
    signed root, and a rewritten last entry is not included under it."""
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 20)
        store.checkpoint(notes.Signer.generate(ORIGIN))
        _fill(store, 2)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE merkle_nodes SET hash = zeroblob(32)")
    conn.commit()
    conn.close()
    with EventStore.open(db, readonly=True) as store, pytest.raises(VerificationError, match="checkpoint of size 20"):
        backup(store, tmp_path / "b.db", verify="checkpoint")
    _edit_payload(db, 20)
    with EventStore.open(db, readonly=True) as store, pytest.raises(VerificationError, match="checkpoint of size 20"):
        backup(store, tmp_path / "c.db", verify="checkpoint")


def test_an_edit_below_the_checkpoint_passes_a_checkpoint_backup_but_never_a_restore(tmp_path: Path) -> None:
    """What ``verify="checkpoint"`` trusts (docs/operations.md): entries below the checkpoint were
    verified when it was signed. An edit made there since is found by the full check, which
    ``backup`` does by default and ``restore`` always does."""
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 20)
        store.checkpoint(notes.Signer.generate(ORIGIN))
        _fill(store, 2)
    _edit_payload(db, 7)
    with EventStore.open(db, readonly=True) as store:
        quick = backup(store, tmp_path / "quick.db", verify="checkpoint")
        assert quick.verified_from == 21
        with pytest.raises(VerificationError, match="position 7"):
            backup(store, tmp_path / "full.db")
    with pytest.raises(VerificationError, match="position 7"):
        restore(str(tmp_path / "other.db"), tmp_path / "quick.db")
    assert not (tmp_path / "other.db").exists()


def test_backup_of_postgres_is_refused_with_a_pointer_to_the_docs(backend_url: str, tmp_path: Path) -> None:
    if not backend_url.startswith("postgres"):
        pytest.skip("PostgreSQL only")
    with EventStore.open(backend_url) as store:
        with pytest.raises(UserError, match="pg_dump.*docs/operations.md"):
            backup(store, tmp_path / "b.db")
    with pytest.raises(UserError, match="docs/operations.md"):
        restore(backend_url, tmp_path / "b.db")
    assert not (tmp_path / "b.db").exists()


# -- restore --------------------------------------------------------------------------
@pytest.fixture
def behind(tmp_path: Path) -> tuple[Path, Path]:
    """A store of 5 entries with a checkpoint at 5, and a backup of its first 3 entries."""
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 3)
        backup(store, tmp_path / "old.db")
        _fill(store, 2)
        store.checkpoint(notes.Signer.generate(ORIGIN))
    return db, tmp_path / "old.db"


def test_restore_behind_a_stored_checkpoint_is_refused_then_forced_and_recorded(behind: tuple[Path, Path]) -> None:
    db, old = behind
    before = _rows(db)
    with pytest.raises(RestoreRefused, match="head is position 3, behind the checkpoint of size 5"):
        restore(str(db), old)
    assert _rows(db) == before  # nothing replaced
    with pytest.raises(UserError, match="--reason"):
        restore(str(db), old, force=True)
    report = restore(str(db), old, force=True, reason="disk lost", by="ops-7")
    assert report.forced and report.behind is not None and report.behind.tree_size == 5
    after = _rows(db)
    assert after[:3] == before[:3] and len(after) == 4 and report.event_position == 4
    (event,) = _restored_events(db)
    assert event["forced"] is True and event["reason"] == "disk lost" and event["by"] == "ops-7"
    assert event["behind"]["tree_size"] == 5 and event["backup_head_position"] == 3
    assert event["replaced_head_position"] == 5
    assert event["behind_note"].startswith(f"{ORIGIN}\n5\n")  # the lost signed checkpoint is kept
    with EventStore.open(db, readonly=True) as s:
        assert s.verify().ok


def test_restore_of_a_backup_of_another_history_is_refused(tmp_path: Path) -> None:
    """Same size as the checkpoint, other entries: the roots differ, so it is a rewrite."""
    with EventStore.open(tmp_path / "other.db") as other:
        _fill(other, 5, marker="other")
        backup(other, tmp_path / "other-backup.db")
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 3)
        store.checkpoint(notes.Signer.generate(ORIGIN))
    with pytest.raises(RestoreRefused, match="first 3 entries do not have the root"):
        restore(str(db), tmp_path / "other-backup.db")


def test_restore_of_a_current_backup_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    signer = notes.Signer.generate(ORIGIN)
    with EventStore.open(db) as store:
        _fill(store, 3)
        store.checkpoint(signer)
        _fill(store, 1)
        backup(store, tmp_path / "b.db")
        _fill(store, 2)  # lost by the restore, but never checkpointed
    report = restore(str(db), tmp_path / "b.db")
    assert not report.forced and report.behind is None and report.replaced_head_position == 6
    assert len(_rows(db)) == 5
    (event,) = _restored_events(db)
    assert event["forced"] is False and "reason" not in event and event["by"]
    # the restored log goes on: appends and checkpoints work
    with EventStore.open(db) as store:
        _fill(store, 1)
        assert store.checkpoint(signer).checkpoint.size == 6


def test_restore_into_a_missing_database(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "live.db") as store:
        _fill(store, 2)
        backup(store, tmp_path / "b.db")
    report = restore(str(tmp_path / "new.db"), tmp_path / "b.db")
    assert report.replaced_head_position is None and len(_rows(tmp_path / "new.db")) == 3


def test_restore_behind_an_auditor_state_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 3)
        backup(store, tmp_path / "b.db")
        _fill(store, 2)
        roots = {n: base64.b64encode(store.tree_root(n)).decode() for n in (2, 5)}
    ahead = AuditorState(origin=ORIGIN, tree_size=5, root=roots[5], checkpoint="")
    with pytest.raises(RestoreRefused, match="size 5 .*the auditor state knows"):
        restore(str(db), tmp_path / "b.db", state=ahead)
    assert len(_rows(db)) == 5
    wrong = AuditorState(origin=ORIGIN, tree_size=2, root=roots[5], checkpoint="")
    with pytest.raises(RestoreRefused, match="first 2 entries do not have the root"):
        restore(str(db), tmp_path / "b.db", state=wrong)
    fine = AuditorState(origin=ORIGIN, tree_size=2, root=roots[2], checkpoint="")
    assert restore(str(db), tmp_path / "b.db", state=fine).behind is None


def test_a_forced_restore_past_an_auditor_state_records_its_origin_and_note(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    signer = notes.Signer.generate("auditor.example/log")
    with EventStore.open(db) as store:
        _fill(store, 3)
        backup(store, tmp_path / "b.db")
        _fill(store, 2)
        note = store.checkpoint(signer).format()
        root = base64.b64encode(store.tree_root(5)).decode()
    state = AuditorState(origin="auditor.example/log", tree_size=5, root=root, checkpoint=note)
    with pytest.raises(RestoreRefused, match="'auditor.example/log' that the auditor state knows"):
        restore(str(db), tmp_path / "b.db", state=state)
    restore(str(db), tmp_path / "b.db", state=state, force=True, reason="drill")
    (event,) = _restored_events(db)
    assert event["behind"]["origin"] == "auditor.example/log" and event["behind"]["known_by"] == "the auditor state"
    assert event["behind_note"] == note


def test_a_corrupted_backup_is_refused_even_when_forced(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with EventStore.open(db) as store:
        _fill(store, 5, marker="MARKER-0123456789")
        backup(store, tmp_path / "b.db")
    raw = (tmp_path / "b.db").read_bytes()
    assert raw.count(b"MARKER-0123456789") >= 1
    (tmp_path / "b.db").write_bytes(raw.replace(b"MARKER-0123456789", b"MARKER-9876543210", 1))
    before = _rows(db)
    with pytest.raises(VerificationError, match="does not verify at position"):
        restore(str(db), tmp_path / "b.db", force=True, reason="try")
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(UserError):
        restore(str(db), tmp_path / "junk.db", force=True, reason="try")
    assert _rows(db) == before
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


def test_restore_while_a_reader_holds_the_store_open(behind: tuple[Path, Path]) -> None:
    """The store is replaced under SQLite's lock: an open connection then reads the new log."""
    db, old = behind
    with EventStore.open(db) as live:
        assert live.head()[0] == 5
        restore(str(db), old, force=True, reason="test")
        assert live.head()[0] == 4
        assert live.verify().ok


# -- maintain -------------------------------------------------------------------------
def test_maintain(backend_url: str) -> None:
    import projections

    with EventStore.open(backend_url) as store:
        _fill(store, 20)
        projections.run_all(store)
        report = maintain(store)
        assert store.verify().ok
    if backend_url.startswith("postgres"):
        assert "ANALYZE events" in report.done
        assert any(d.startswith("VACUUM ANALYZE") for d in report.done), report
    else:
        assert report.done[0] == "ANALYZE" and report.done[1].startswith("wal_checkpoint(TRUNCATE)")
        assert report.skipped == ["incremental_vacuum: auto_vacuum is none, not incremental"]
        assert not Path(backend_url + "-wal").exists() or Path(backend_url + "-wal").stat().st_size == 0
    assert report.size_before and report.size_after


def test_maintain_incremental_vacuum(tmp_path: Path) -> None:
    db = tmp_path / "inc.db"
    sqlite3.connect(db).execute("PRAGMA auto_vacuum=INCREMENTAL").connection.close()
    with EventStore.open(db) as store:
        _fill(store, 5)
        report = maintain(store)
    assert any(d.startswith("incremental_vacuum") for d in report.done), report


# -- the command line -----------------------------------------------------------------
def test_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "live.db")
    with EventStore.open(db) as store:
        _fill(store, 3)
    r = CliRunner()
    ok = r.invoke(main, ["--db", db, "backup", str(tmp_path / "b.db")])
    assert ok.exit_code == 0 and "head 3" in ok.stdout and "3 entries verified" in ok.stdout
    again = r.invoke(main, ["--db", db, "backup", str(tmp_path / "b.db")])
    assert again.exit_code == 2 and again.stderr.startswith("error: ") and "--force" in again.stderr
    state = tmp_path / "state.json"
    with EventStore.open(db) as store:
        _fill(store, 2)
        save_state(
            state,
            AuditorState(origin=ORIGIN, tree_size=5, root=base64.b64encode(store.tree_root()).decode(), checkpoint=""),
        )
    refused = r.invoke(main, ["--db", db, "restore", str(tmp_path / "b.db"), "--state", str(state)])
    assert refused.exit_code == 2 and len(refused.stderr.splitlines()) == 1 and "roll back" in refused.stderr
    missing = r.invoke(main, ["--db", db, "restore", str(tmp_path / "b.db"), "--state", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no auditor state file" in missing.stderr
    forced = r.invoke(
        main,
        [
            "--db",
            db,
            "restore",
            str(tmp_path / "b.db"),
            "--state",
            str(state),
            "--force",
            "--reason",
            "drill",
            "--json",
        ],
    )
    assert forced.exit_code == 0 and '"forced":true' in forced.stdout
    m = r.invoke(main, ["--db", db, "maintain"])
    assert m.exit_code == 0 and "done: ANALYZE" in m.stdout
