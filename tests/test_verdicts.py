"""Verdicts, not tracebacks: read-only opens, damaged databases, values of the wrong storage type, keys."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main
from eventstore.errors import BackendError, ConfigurationError, EventStoreError
from eventstore.hashing import GENESIS_HASH
from eventstore.records import COLUMNS, Row
from eventstore.verify import ChainVerifier

READ_ONLY = [
    ["verify"],
    ["read"],
    ["read", "--stream", "s0"],
    ["stats"],
    ["events", "check"],
    ["project", "status"],
    ["migrate", "status"],
    ["migrate", "plan"],
    ["verify-receipt", "RECEIPT"],
    ["prove", "inclusion", "--position", "3", "--checkpoint", "CP"],
    ["receipt", "--position", "3", "--checkpoint", "CP"],
    ["prove", "consistency", "--old", "CP", "--new", "CP"],
]
ENV = {"EVENTSTORE_DEBUG": "1"}


def _fill(args: list[str], files: dict[str, str]) -> list[str]:
    return [files.get(a, a) for a in args]


def _build(path: Path, n: int = 40, pad: int = 0) -> None:
    with EventStore.open(path) as store:
        for i in range(0, n, 10):
            store.append_many(
                [(f"s{j % 3}", [NewEvent(type="note", data={"i": i + j, "pad": "x" * pad})], None) for j in range(10)]
            )


@pytest.fixture
def audited(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A database with a checkpoint and a receipt, every connection closed (as an auditor finds it)."""
    db = tmp_path / "log.db"
    _build(db)
    r = CliRunner()
    assert r.invoke(main, ["keygen", "--name", "example.com/log", "--out", str(tmp_path / "k")]).exit_code == 0
    cp = r.invoke(main, ["--db", str(db), "checkpoint", "--key", str(tmp_path / "k")])
    assert cp.exit_code == 0, cp.output
    (tmp_path / "cp.txt").write_text(cp.stdout)
    receipt = r.invoke(main, ["--db", str(db), "append", "--stream", "s0", "--type", "note", "--data", "{}"])
    (tmp_path / "receipt.json").write_text(receipt.stdout)
    return db, {"CP": str(tmp_path / "cp.txt"), "RECEIPT": str(tmp_path / "receipt.json")}


def _snapshot(db: Path) -> tuple[str, int]:
    return hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a[:2]) for a in READ_ONLY])
def test_read_only_commands_never_create_a_database(
    args: list[str], audited: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, files = audited
    missing = tmp_path / "typo.db"
    r = CliRunner().invoke(main, ["--db", str(missing), *_fill(args, files)], env=ENV)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: no database at") and len(r.stderr.splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("typo.db")]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a[:2]) for a in READ_ONLY])
def test_read_only_commands_never_change_the_database(args: list[str], audited: tuple[Path, dict[str, str]]) -> None:
    db, files = audited
    before = _snapshot(db)
    r = CliRunner().invoke(main, ["--db", str(db), *_fill(args, files)], env=ENV)
    assert r.exit_code == 0, r.output
    assert _snapshot(db) == before
    assert not Path(str(db) + "-journal").exists()


def test_verify_of_an_empty_file_writes_nothing(tmp_path: Path) -> None:
    """Before: verify switched the file to WAL and created schema_migrations, then said 'caught up'."""
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    r = CliRunner().invoke(main, ["--db", str(empty), "verify"], env=ENV)
    assert r.exit_code == 2 and "not an eventstore database" in r.stderr
    assert empty.read_bytes() == b""


def test_verify_of_a_database_in_a_read_only_file(audited: tuple[Path, dict[str, str]]) -> None:
    db, _ = audited
    os.chmod(db, 0o444)
    before = _snapshot(db)
    r = CliRunner().invoke(main, ["--db", str(db), "verify"], env=ENV)
    assert r.exit_code == 0 and r.stdout.startswith("OK"), r.output
    assert _snapshot(db) == before


def test_read_only_store_refuses_writes_and_sees_concurrent_appends(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _build(db, 10)
    with EventStore.open(db) as writer, EventStore.open(db, readonly=True) as reader:
        with pytest.raises(BackendError, match="read-only"):
            reader.append("s", [NewEvent(type="note", data={})])
        stop = threading.Event()

        def append() -> None:
            while not stop.is_set():
                writer.append("w", [NewEvent(type="note", data={"x": 1})])

        t = threading.Thread(target=append)
        t.start()
        try:
            reports = [reader.verify() for _ in range(5)]
        finally:
            stop.set()
            t.join()
        assert all(r.ok for r in reports), reports
        assert reader.verify().head_position == writer.head()[0]


def test_read_only_open_of_a_missing_path_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no database"):
        EventStore.open(tmp_path / "nope.db", readonly=True)
    assert not list(tmp_path.iterdir())


def _tamper(db: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    c = sqlite3.connect(db)
    c.execute("DROP TRIGGER events_no_update")
    c.execute(sql, params)
    c.commit()
    c.close()


def test_payload_rewritten_as_text_is_a_type_problem_at_its_position(tmp_path: Path) -> None:
    """sqlite3 shell: UPDATE events SET data = replace(data, ...) stores TEXT; verify crashed with TypeError."""
    db = tmp_path / "log.db"
    _build(db)
    _tamper(db, "UPDATE events SET data = CAST(replace(data, 'i', 'j') AS TEXT) WHERE position = 7")
    with EventStore.open(db, readonly=True) as store:
        report = store.verify()
        assert not report.ok and report.problem is not None
        assert (report.problem.position, report.problem.kind) == (7, "type")
        assert "data" in report.problem.message
        receipt = store.verify_receipt(_receipt_of(store, 7))
        assert not receipt.ok and receipt.problem is not None and receipt.problem.kind == "type"
    r = CliRunner().invoke(main, ["--db", str(db), "verify"], env=ENV)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 7 (type)"), r.output


def test_text_that_is_not_utf8_names_its_position(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _build(db)
    _tamper(db, "UPDATE events SET stream_id = CAST(x'ff00ff' AS TEXT) WHERE position = 23")
    with EventStore.open(db, readonly=True) as store:
        report = store.verify()
    assert not report.ok and report.problem is not None
    assert (report.problem.position, report.problem.kind) == (23, "unreadable"), report.problem
    r = CliRunner().invoke(main, ["--db", str(db), "verify"], env=ENV)
    assert r.exit_code == 1 and r.stdout.startswith("FAILED at position 23"), r.output


def _receipt_of(store: EventStore, position: int):  # type: ignore[no-untyped-def]
    from eventstore.records import Receipt

    row = store.backend.row_at(position - 1)
    assert row is not None
    return Receipt(
        position=position,
        stream_id="s",
        version=1,
        hash="00" * 32,
        prev_hash=row.hash.hex(),
        recorded_at=row.recorded_at,
    )


def _rows(n: int = 3) -> list[Row]:
    with_store: list[Row] = []
    from eventstore.hashing import digest, entry_hash

    prev = GENESIS_HASH
    for p in range(1, n + 1):
        data, meta = b'{"i":%d}' % p, b"{}"
        args = (p, "s", p, "note", "2026-01-01T00:00:00.000000Z", digest(data), digest(meta), prev)
        h = entry_hash(*args)
        with_store.append(Row(p, "s", p, "note", data, meta, digest(data), digest(meta), args[4], prev, h))
        prev = h
    return with_store


WRONG = [None, "text", b"\x00" * 32, 1.5, 7, 2**64, -3]
ALLOWED = {
    "position": int,
    "stream_id": str,
    "version": int,
    "type": str,
    "data": (bytes, type(None)),
    "metadata": (bytes, type(None)),
    "data_digest": bytes,
    "metadata_digest": bytes,
    "recorded_at": str,
    "prev_hash": bytes,
    "hash": bytes,
    "event_id": (str, type(None)),
}


def _wrong_values() -> list[tuple[str, object]]:
    """(column, value) pairs where the value has the wrong type, or is an integer SQLite cannot hold;
    another valid position is a gap, not a type problem, and is left out."""
    out = []
    for column in COLUMNS:
        for value in WRONG:
            right_type = isinstance(value, ALLOWED[column]) and not isinstance(value, float)  # type: ignore[arg-type]
            if right_type and not (type(value) is int and not 1 <= value < 2**63):  # type: ignore[operator]
                continue
            if column == "position" and type(value) is int:
                continue
            out.append((column, value))
    return out


@pytest.mark.parametrize("column,value", _wrong_values(), ids=repr)
def test_a_value_of_the_wrong_type_in_any_column_is_a_type_problem(column: str, value: object) -> None:
    rows = _rows()
    rows[1] = rows[1]._replace(**{column: value})
    checker = ChainVerifier()
    assert not checker.feed(rows)
    assert checker.problem is not None
    assert checker.problem.position == 2 and checker.problem.kind == "type", checker.problem
    assert checker.checked == 1


def test_damaged_pages_are_a_verdict_naming_a_position(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _build(db, 1000, pad=200)
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    pages = db.stat().st_size // 4096
    with open(db, "r+b") as f:
        f.seek((pages // 2) * 4096)
        f.write(b"\xff" * 4096)
    with EventStore.open(db, readonly=True) as store:
        report = store.verify()
    assert not report.ok and report.problem is not None
    assert report.problem.kind == "unreadable" and 1 < report.problem.position < 1000, report.problem
    assert report.checked == report.problem.position - 1
    r = CliRunner().invoke(main, ["--db", str(db), "verify"], env=ENV)
    assert r.exit_code == 1, r.output
    assert r.stdout.startswith(f"FAILED at position {report.problem.position} (unreadable)")


def test_damage_met_by_other_commands_is_a_one_line_verdict(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _build(db, 1000, pad=200)
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    with open(db, "r+b") as f:
        f.seek((db.stat().st_size // 4096 // 2) * 4096)
        f.write(b"\x00" * 4096)
    r = CliRunner().invoke(main, ["--db", str(db), "read"], env=ENV)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stdout.splitlines()[-1].startswith("FAILED (unreadable): the database disk image is malformed")


# -- keys ---------------------------------------------------------------------------


def test_keygen_does_not_write_through_a_symlink(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    out.mkdir()
    victim = tmp_path / "victim"
    (out / "verifier.pub").symlink_to(victim)
    r = CliRunner().invoke(main, ["keygen", "--name", "n", "--out", str(out)], env=ENV)
    assert r.exit_code == 2 and "exists" in r.stderr
    assert not victim.exists() and sorted(p.name for p in out.iterdir()) == ["verifier.pub"]
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    r = CliRunner().invoke(main, ["keygen", "--name", "n", "--out", str(tmp_path / "link")], env=ENV)
    assert r.exit_code == 2 and "symbolic link" in r.stderr
    assert not list((tmp_path / "real").iterdir())


def test_keygen_never_leaves_half_a_key_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "keys"
    out.mkdir()
    real_link = os.link
    calls = []

    def failing_link(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_link(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", failing_link)
    r = CliRunner().invoke(main, ["keygen", "--name", "n", "--out", str(out)], env=ENV)
    assert r.exit_code == 2 and r.stderr.startswith("error: no space left on device"), r.output
    assert list(out.iterdir()) == []


def test_keygen_into_a_new_directory_makes_both_files(tmp_path: Path) -> None:
    out = tmp_path / "a" / "keys"
    r = CliRunner().invoke(main, ["keygen", "--name", "n", "--out", str(out)], env=ENV)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["signing.key", "verifier.pub"]
    assert (out / "signing.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["keys"]


def test_warns_about_a_signing_key_others_can_read(audited: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    db, _ = audited
    os.chmod(tmp_path / "k" / "signing.key", 0o644)
    r = CliRunner().invoke(main, ["--db", str(db), "checkpoint", "--key", str(tmp_path / "k")], env=ENV)
    assert r.exit_code == 0
    assert r.stderr.startswith("warning: signing key") and "chmod 600" in r.stderr


def test_a_witness_key_must_be_a_cosigner_key(audited: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    db, files = audited
    pub = str(tmp_path / "k" / "verifier.pub")
    r = CliRunner().invoke(
        main,
        ["--db", str(db), "verify", "--checkpoint", files["CP"], "--public-key", pub, "--witness-key", pub],
        env=ENV,
    )
    assert r.exit_code == 2 and "is a log's key, not a witness key" in r.stderr, r.output


def test_read_only_open_on_every_backend(backend_url: str) -> None:
    with EventStore.open(backend_url) as store:
        store.append("s", [NewEvent(type="note", data={"i": 1})])
    with EventStore.open(backend_url, readonly=True) as ro:
        assert ro.verify().ok and ro.head()[0] == 1
        assert [e.position for e in ro.read_all()] == [1]
        ro.prove_inclusion(1)  # no Merkle node is stored
        with pytest.raises(EventStoreError):
            ro.append("s", [NewEvent(type="note", data={"i": 2})])
        with pytest.raises(EventStoreError):
            ro.keys.key_for_writing("alice")
    with EventStore.open(backend_url) as store:
        assert store.head()[0] == 1 and store.tree.synced_size() == 0


def test_a_rollback_journal_database_stays_as_it_is(tmp_path: Path) -> None:
    """Before: verify switched a database to WAL (its header changed)."""
    db = tmp_path / "log.db"
    _build(db)
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=DELETE")
    c.close()
    before = _snapshot(db)
    r = CliRunner().invoke(main, ["--db", str(db), "verify"], env=ENV)
    assert r.exit_code == 0, r.output
    assert _snapshot(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.db"]


def test_a_full_disk_when_saving_the_auditor_state_is_one_line(
    audited: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, files = audited

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    state = tmp_path / "state.json"
    r = CliRunner().invoke(
        main,
        [
            "--db",
            str(db),
            "verify",
            "--checkpoint",
            files["CP"],
            "--public-key",
            str(tmp_path / "k" / "verifier.pub"),
            "--state",
            str(state),
        ],
        env=ENV,
    )
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: cannot write auditor state file {state}: No space left on device\n"
    assert not state.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_sqlite_error_inside_a_transaction_is_a_backend_error(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "log.db") as store:
        with pytest.raises(BackendError, match="nothing was written"):
            with store.backend.transaction() as tx:
                tx.execute("INSERT INTO no_such_table VALUES (1)")


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root and setpriv")
def test_verify_as_another_user_in_a_read_only_directory() -> None:
    """A WAL database on read-only media: SQLite cannot create the -shm for its read lock."""
    import shutil
    import subprocess
    import sys
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="eventstore-ro-"))  # pytest's tmp_path is private to root
    d = tmp_path / "ro"
    d.mkdir()
    _build(d / "log.db")
    before = _snapshot(d / "log.db")
    os.chmod(d / "log.db", 0o444)
    os.chmod(d, 0o555)
    os.chmod(tmp_path, 0o755)
    code = (
        "import sys; from eventstore import EventStore; s = EventStore.open(sys.argv[1], readonly=True); "
        "r = s.verify(); print(r.ok, r.checked)"
    )
    root = Path(__file__).resolve().parents[1]
    try:
        p = subprocess.run(
            [
                "/usr/bin/setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
                str(d / "log.db"),
            ],
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            timeout=60,
        )
    finally:
        os.chmod(d, 0o755)
    after = _snapshot(d / "log.db"), sorted(x.name for x in d.iterdir())
    shutil.rmtree(tmp_path)
    if "Permission denied" in p.stderr and "eventstore" not in p.stderr:
        pytest.skip(f"the test's files are not readable by nobody: {p.stderr.strip()[:200]}")
    assert p.stdout.strip() == "True 40", p.stderr
    assert after == (before, ["log.db"])


def test_a_damaged_schema_page_is_a_verdict(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _build(db)
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    with open(db, "r+b") as f:  # page 1 past the 100-byte file header: the schema table
        f.seek(100)
        f.write(b"\xff" * 3996)
    for args in (["verify"], ["read"], ["stats"]):
        r = CliRunner().invoke(main, ["--db", str(db), *args], env=ENV)
        assert r.exit_code == 1, r.output
        assert r.stdout.startswith("FAILED (unreadable): the database disk image is malformed"), r.output


def test_read_and_events_check_name_a_tampered_row(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _build(db)
    _tamper(db, "UPDATE events SET data = CAST(data AS TEXT) WHERE position = 12")
    for args in (["read"], ["read", "--stream", "s1"], ["events", "check"]):
        r = CliRunner().invoke(main, ["--db", str(db), *args], env=ENV)
        assert r.exit_code == 1, r.output
        assert r.stdout.splitlines()[-1].startswith("FAILED (unreadable): position 12: column data holds text"), (
            r.output
        )
