"""`eventstore roles apply`: each group role can do its job and nothing else, and no role
without write rights can delay appends. Login roles are members of the group roles, as in
docs/postgres.md."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from eventstore import EventStore, EventStoreError, NewEvent
from eventstore.cli import main
from eventstore.notes import Signer
from eventstore.roles import APPENDER, AUDITOR, PROJECTOR, ROLES, apply

_logins = itertools.count()


def ev(i: int = 0) -> NewEvent:
    return NewEvent(type="thing.happened", data={"i": i})


def note(i: int) -> NewEvent:
    return NewEvent(
        type="message.appended",
        data={"session_id": "s", "message_id": f"m{i}", "role": "user", "content": f"secret {i}"},
        subject=f"subject-{i}",
    )


@pytest.fixture
def owner_url(request: pytest.FixtureRequest) -> str:
    from tests import pg_cluster

    return pg_cluster.fresh_database_url(request)


@pytest.fixture
def owner(owner_url: str) -> Iterator[EventStore]:
    with EventStore.open(owner_url) as store:
        apply(store)
        yield store


def login(owner_url: str, group: str) -> str:
    """A new login role, member of ``group``; its URL on the same database."""
    name = f"es_login_{group.rsplit('_', 1)[1]}_{next(_logins)}_{int(time.time() * 1000) % 100000}"
    with psycopg.connect(owner_url, autocommit=True) as c:
        c.execute(f"CREATE ROLE {name} LOGIN")
        c.execute(f"GRANT {group} TO {name}")
        if group == PROJECTOR:  # so that the read models belong to the group, not to one worker
            c.execute(f"ALTER ROLE {name} SET role = {group}")
    return owner_url.replace("postgres@", f"{name}@", 1)


def grants(url: str) -> set[tuple[str, ...]]:
    with psycopg.connect(url) as c:
        tables = c.execute(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = ANY(%s)",
            (list(ROLES),),
        ).fetchall()
        schema = c.execute(
            "SELECT r, p FROM unnest(%s::text[]) r, unnest(ARRAY['USAGE', 'CREATE']) p "
            "WHERE has_schema_privilege(r, 'public', p)",
            (list(ROLES),),
        ).fetchall()
    return {tuple(t) for t in tables} | {(r, "schema", p) for r, p in schema}


def refused(url: str, sql: str) -> bool:
    with psycopg.connect(url) as c:
        try:
            c.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_roles_apply_is_idempotent_and_revokes_what_is_too_broad(owner: EventStore, owner_url: str) -> None:
    first = grants(owner_url)
    assert (APPENDER, "events", "INSERT") in first and (APPENDER, "subject_keys", "UPDATE") not in first
    assert {g for g in first if g[0] == AUDITOR} == {
        (AUDITOR, t, "SELECT")
        for t in (
            "events",
            "schema_migrations",
            "subject_keys",
            "merkle_nodes",
            "merkle_state",
            "checkpoints",
            "projection_state",
            "retention_policies",
            "retention_settings",
            "legal_holds",
            "retention_runs",
        )
    } | {(AUDITOR, "schema", "USAGE")}
    with psycopg.connect(owner_url, autocommit=True) as c:  # what the old docs granted, and more
        c.execute(
            f"GRANT SELECT, INSERT, UPDATE ON subject_keys, merkle_nodes, merkle_state, checkpoints TO {APPENDER}"
        )
        c.execute(f"GRANT CREATE ON SCHEMA public TO {AUDITOR}")
        c.execute(f"GRANT DELETE ON events TO {PROJECTOR}")
    report = apply(owner)
    assert report.created == [] and grants(owner_url) == first


def test_appender_appends_and_reads_and_nothing_else(owner: EventStore, owner_url: str) -> None:
    url = login(owner_url, APPENDER)
    with EventStore.open(url) as store:  # opens without CREATE rights: reads schema_migrations only
        receipts = store.append("a", [ev(0), note(1)])  # note(1) creates the key of a new subject
        assert [e.data.get("content") for e in store.read_all()] == [None, "secret 1"]
        assert store.verify().ok and store.verify_receipt(receipts[-1]).ok
        with pytest.raises(EventStoreError):
            store.erase("subject-1", requested_by="appender")  # destroying a key is the owner's
        with pytest.raises(EventStoreError):
            store.checkpoint(Signer.generate("example.com/log"))  # the Merkle tree is the owner's
    for sql in (
        "UPDATE subject_keys SET key_hex = NULL",
        "INSERT INTO merkle_nodes VALUES (4, 0, '\\x00')",
        "INSERT INTO merkle_state VALUES (1, 16)",
        "UPDATE merkle_state SET size = 0",
        "INSERT INTO checkpoints (origin, tree_size, root, note, created_at) VALUES ('o', 1, '\\x00', 'n', 'c')",
        "DELETE FROM events",
        "UPDATE events SET type = 'x'",
        "UPDATE events SET data = NULL",  # pruning is the owner's
        "INSERT INTO legal_holds VALUES ('h', 'subject', 's', 'r', 'a', 'b', NULL, NULL)",
        "DELETE FROM retention_policies",
        "TRUNCATE events",
        "UPDATE projection_state SET position = 0",
        "CREATE TABLE mine (x int)",
        "ALTER TABLE events DISABLE TRIGGER events_no_update",
        "DROP TABLE append_lock",
    ):
        assert refused(url, sql), sql
    assert owner.head()[0] == 2 and owner.verify().ok


def test_projector_owns_read_models_and_cannot_write_the_log(owner: EventStore, owner_url: str) -> None:
    from projections import Runner

    owner.append("s", [note(1), note(2)])
    url = login(owner_url, PROJECTOR)
    with EventStore.open(url) as store:
        runner = Runner(store)
        assert runner.run_once()["messages"] == 2
        runner.release()
        with pytest.raises(EventStoreError):
            store.append("s", [ev()])
    with EventStore.open(login(owner_url, PROJECTOR)) as store:  # another worker, another login
        runner = Runner(store)
        runner.rebuild("messages")  # drops and recreates the group's tables and views
        assert store.backend.query("SELECT count(*) FROM messages")[0][0] == 2
        runner.release()
    auditor_url = login(owner_url, AUDITOR)
    with psycopg.connect(auditor_url) as c:  # read models the projector made are readable by auditors
        assert c.execute("SELECT count(*) FROM messages").fetchone() == (2,)
    for sql in (
        "INSERT INTO events SELECT * FROM events",
        "UPDATE subject_keys SET key_hex = NULL",
        "INSERT INTO checkpoints (origin, tree_size, root, note, created_at) VALUES ('o', 1, '\\x00', 'n', 'c')",
        "INSERT INTO merkle_state VALUES (1, 16)",
        "LOCK TABLE append_lock IN EXCLUSIVE MODE",
    ):
        assert refused(url, sql), sql


def test_auditor_reads_and_verifies_and_changes_nothing(owner: EventStore, owner_url: str) -> None:
    owner.append("s", [note(1), ev(2)])
    signer = Signer.generate("example.com/log")
    cp = owner.checkpoint(signer)
    url = login(owner_url, AUDITOR)
    with EventStore.open(url) as store:
        assert store.verify().ok and store.stats().events == 2
        assert store.verify_checkpoint(cp).ok
        assert [e.data.get("content") for e in store.read_all()] == ["secret 1", None]
        with pytest.raises(EventStoreError, match="may not append"):
            store.append("s", [ev()])
    for sql in (
        "INSERT INTO events SELECT * FROM events",
        "UPDATE subject_keys SET key_hex = NULL",
        "INSERT INTO subject_keys VALUES ('x', NULL, 'c', NULL, NULL)",
        "DELETE FROM checkpoints",
        "INSERT INTO merkle_state VALUES (1, 16)",
        "UPDATE projection_state SET position = 0",
        "CREATE TABLE mine (x int)",
    ):
        assert refused(url, sql), sql
    assert owner.head()[0] == 2


BLOCKERS = [
    "SELECT pg_advisory_lock(7311146993828163442)",  # the advisory lock appends took before 0005
    "SELECT pg_advisory_xact_lock(7311146993828163442)",
    "LOCK TABLE append_lock IN ACCESS EXCLUSIVE MODE",
    "LOCK TABLE append_lock IN EXCLUSIVE MODE",
    "LOCK TABLE append_lock IN SHARE MODE",
    "LOCK TABLE append_lock IN ACCESS SHARE MODE",
    "LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE",
    "LOCK TABLE events IN SHARE MODE",
    "LOCK TABLE events IN ACCESS SHARE MODE",
    "LOCK TABLE subject_keys IN SHARE MODE",
    "SELECT * FROM append_lock FOR UPDATE",
    "SELECT * FROM append_lock FOR KEY SHARE",
    "SELECT * FROM events FOR UPDATE",
    "SELECT * FROM events FOR SHARE",
    "SELECT * FROM events ORDER BY position DESC LIMIT 1 FOR KEY SHARE",
    "SELECT count(*) FROM events",  # and then sit in the transaction
    "ALTER TABLE append_lock ADD COLUMN x int",
    "ALTER TABLE events ADD COLUMN x int",
    "TRUNCATE append_lock",
    "CREATE INDEX ON events (type)",
    "COMMENT ON TABLE append_lock IS 'mine'",
]


@pytest.mark.parametrize("group", [AUDITOR, PROJECTOR])
def test_a_role_without_write_rights_cannot_delay_appends(owner: EventStore, owner_url: str, group: str) -> None:
    owner.append("a", [ev(0)])
    url = login(owner_url, group)
    held = []
    with psycopg.connect(url) as c:  # one transaction holding every lock the role managed to take
        for i, sql in enumerate(BLOCKERS):
            c.execute(f"SAVEPOINT s{i}")
            try:
                c.execute(sql)
                held.append(sql)
            except psycopg.Error:
                c.execute(f"ROLLBACK TO SAVEPOINT s{i}")
        assert "LOCK TABLE append_lock IN EXCLUSIVE MODE" not in held
        with EventStore.open(owner_url, lock_timeout=2.0) as appender:
            t = time.monotonic()
            assert appender.append("a", [ev(1)])[0].position == 2
            assert time.monotonic() - t < 1.5, held
    appender_url = login(owner_url, APPENDER)
    with EventStore.open(appender_url, lock_timeout=2.0) as store, psycopg.connect(url) as c:
        c.execute("SELECT pg_advisory_lock(7311146993828163442)")
        assert store.append("a", [ev(2)])[0].position == 3  # as an appender, too


def test_cli_roles_apply(owner_url: str, tmp_path: object) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--db", owner_url, "roles", "apply", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["schema"] == "public" and set(report["grants"]) == set(ROLES)
    assert "SELECT, INSERT on public.events" in report["grants"][APPENDER]
    again = runner.invoke(main, ["--db", owner_url, "roles", "apply"])
    assert again.exit_code == 0 and "eventstore_auditor (updated)" in again.output
    bad = runner.invoke(main, ["--db", owner_url, "roles", "apply", "--schema", "nowhere"])
    assert bad.exit_code == 2 and "lacks the store's table" in bad.output
    db = f"{tmp_path}/x.db"
    sqlite = runner.invoke(main, ["--db", db, "roles", "apply"])
    assert sqlite.exit_code == 2 and "PostgreSQL" in sqlite.output
    import os

    assert not os.path.exists(db)
