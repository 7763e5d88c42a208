"""The auditor's workflow from the command line: checkpoints, forks, truncation, rollback, proofs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventstore import EventStore, NewEvent
from eventstore.cli import main


class Env:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.db = str(tmp / "a.db")

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--db", self.db, *args])

    def append(self, n: int) -> None:
        with EventStore.open(self.db) as store:
            for i in range(n):
                store.append(f"s{i % 3}", [NewEvent(type="t", data={"i": i})])

    def checkpoint(self, name: str, key: str = "k") -> str:
        r = self("checkpoint", "--key", str(self.tmp / key))
        assert r.exit_code == 0, r.output
        path = self.tmp / name
        path.write_text(r.stdout)
        return str(path)

    def path(self, name: str) -> str:
        return str(self.tmp / name)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    e = Env(tmp_path)
    assert e("keygen", "--name", "test.example/log", "--out", e.path("k")).exit_code == 0
    assert e("keygen", "--name", "other.example/log", "--out", e.path("k2")).exit_code == 0
    return e


def _cut_and_reappend(db: str, keep: int, extra: int) -> None:
    """An attacker truncates the log and appends other events: a fork with valid hashes."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE position > ?", (keep,))
    conn.execute("DELETE FROM merkle_nodes")
    conn.execute("DELETE FROM merkle_state")
    conn.commit()
    conn.close()
    with EventStore.open(db) as store:
        for i in range(extra):
            store.append("forged", [NewEvent(type="t", data={"forged": i})])


def test_keygen_writes_a_private_key_only_the_owner_can_read(env: Env) -> None:
    assert (Path(env.path("k")) / "signing.key").stat().st_mode & 0o777 == 0o600
    assert (Path(env.path("k")) / "verifier.pub").read_text().startswith("test.example/log+")
    r = env("keygen", "--name", "test.example/log", "--out", env.path("k"))
    assert r.exit_code == 2 and "refusing to overwrite" in r.stderr


def test_checkpoint_verifies_and_a_fork_fails(env: Env) -> None:
    env.append(20)
    cp = env.checkpoint("cp1")
    pub = env.path("k/verifier.pub")
    assert env("verify", "--checkpoint", cp, "--public-key", pub).exit_code == 0
    _cut_and_reappend(env.db, keep=15, extra=8)
    plain = env("verify")
    assert plain.exit_code == 0  # the chain alone cannot see a consistent rewrite
    r = env("verify", "--checkpoint", cp, "--public-key", pub, "--json")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["problem"]["kind"] == "fork"
    # and the store refuses to sign a view inconsistent with what it signed before
    r = env("checkpoint", "--key", env.path("k"))
    assert r.exit_code == 2 and "refusing to sign" in r.stderr


def test_truncation_and_another_key_fail(env: Env) -> None:
    env.append(10)
    cp = env.checkpoint("cp1")
    r = env("verify", "--checkpoint", cp, "--public-key", env.path("k2/verifier.pub"))
    assert r.exit_code == 1 and "no valid signature" in r.stdout
    conn = sqlite3.connect(env.db)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE position > 7")
    conn.commit()
    conn.close()
    r = env("verify", "--checkpoint", cp, "--public-key", env.path("k/verifier.pub"), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"]["kind"] == "truncated"


def test_state_file_refuses_rollback_and_remembers_the_newest(env: Env) -> None:
    pub = env.path("k/verifier.pub")
    state = env.path("auditor.json")
    env.append(5)
    cp1 = env.checkpoint("cp1")
    env.append(5)
    cp2 = env.checkpoint("cp2")
    assert env("verify", "--checkpoint", cp2, "--public-key", pub, "--state", state).exit_code == 0
    assert json.loads(Path(state).read_text())["tree_size"] == 10
    r = env("verify", "--checkpoint", cp1, "--public-key", pub, "--state", state, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"]["kind"] == "rollback"
    assert json.loads(Path(state).read_text())["tree_size"] == 10
    # a forked log is refused against the remembered checkpoint even with a fresh, validly signed one
    _cut_and_reappend(env.db, keep=8, extra=6)
    conn = sqlite3.connect(env.db)
    conn.execute("DELETE FROM checkpoints")  # the attacker also hides the old checkpoints
    conn.commit()
    conn.close()
    cp3 = env.checkpoint("cp3")
    r = env("verify", "--checkpoint", cp3, "--public-key", pub, "--state", state, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"]["kind"] == "fork"


def test_proofs_and_offline_receipts_verify_without_a_database(env: Env, tmp_path: Path) -> None:
    env.append(37)
    cp1 = env.checkpoint("cp1")
    env.append(20)
    cp2 = env.checkpoint("cp2")
    pub = env.path("k/verifier.pub")
    inc = tmp_path / "inc.json"
    inc.write_text(env("prove", "inclusion", "--position", "30", "--checkpoint", cp1).stdout)
    con = tmp_path / "con.json"
    con.write_text(env("prove", "consistency", "--old", cp1, "--new", cp2).stdout)
    rec = tmp_path / "r.tlog-proof"
    rec.write_text(env("receipt", "--position", "50", "--checkpoint", cp2).stdout)
    Path(env.db).unlink()  # offline: no database at all

    def vp(*args: str) -> Result:
        return CliRunner().invoke(main, ["--db", "/nonexistent/x.db", "verify-proof", *args])

    assert vp(str(inc), "--checkpoint", cp1, "--public-key", pub).exit_code == 0
    assert vp(str(con), "--checkpoint", cp1, "--checkpoint", cp2, "--public-key", pub).exit_code == 0
    r = vp(str(rec), "--public-key", pub)
    assert r.exit_code == 0 and "entry 50" in r.stdout
    # wrong checkpoint, swapped order, other key, altered proof: invalid (1); usage errors: 2
    assert vp(str(inc), "--checkpoint", cp2, "--public-key", pub).exit_code == 1
    assert vp(str(con), "--checkpoint", cp2, "--checkpoint", cp1, "--public-key", pub).exit_code == 1
    assert vp(str(rec), "--public-key", env.path("k2/verifier.pub")).exit_code == 1
    doc = json.loads(inc.read_text())
    doc["hashes"][0] = doc["hashes"][0][:-1] + ("0" if doc["hashes"][0][-1] != "0" else "1")
    inc.write_text(json.dumps(doc))
    assert vp(str(inc), "--checkpoint", cp1, "--public-key", pub).exit_code == 1
    text = rec.read_text().replace("index 49", "index 48")
    rec.write_text(text)
    assert vp(str(rec), "--public-key", pub).exit_code == 1
    assert vp(str(con), "--checkpoint", cp1, "--public-key", pub).exit_code == 2
    assert vp(str(tmp_path / "missing"), "--public-key", pub).exit_code == 2


def test_witness_cosigns_only_consistent_checkpoints(env: Env) -> None:
    assert env("keygen", "--name", "witness.example/w1", "--out", env.path("w"), "--cosigner").exit_code == 0
    pub, wpub, wstate = env.path("k/verifier.pub"), env.path("w/verifier.pub"), env.path("w/state.json")
    env.append(9)
    cp1 = env.checkpoint("cp1")
    r = env("cosign", "--key", env.path("w"), "--checkpoint", cp1, "--public-key", pub, "--state", wstate)
    assert r.exit_code == 0
    env.append(4)
    cp2 = env.checkpoint("cp2")
    r = env("cosign", "--key", env.path("w"), "--checkpoint", cp2, "--public-key", pub, "--state", wstate)
    assert r.exit_code == 0
    cosigned = Path(env.path("cp2c"))
    cosigned.write_text(r.stdout)
    assert env("verify", "--checkpoint", str(cosigned), "--public-key", pub, "--witness-key", wpub).exit_code == 0
    assert env("verify", "--checkpoint", cp2, "--public-key", pub, "--witness-key", wpub).exit_code == 1
    r = env("cosign", "--key", env.path("w"), "--checkpoint", cp1, "--public-key", pub, "--state", wstate)
    assert r.exit_code == 2 and "older than the cosigned" in r.stderr


def test_checkpoint_of_a_missing_database_writes_nothing(env: Env) -> None:
    r = CliRunner().invoke(main, ["--db", env.path("missing.db"), "checkpoint", "--key", env.path("k")])
    assert r.exit_code == 2 and not Path(env.path("missing.db")).exists()


def test_state_refuses_a_second_root_for_the_same_size(env: Env) -> None:
    """A split view: the log signs another root at a size the auditor already accepted."""
    from eventstore import notes

    pub, state = env.path("k/verifier.pub"), env.path("auditor.json")
    env.append(6)
    cp = env.checkpoint("cp1")
    assert env("verify", "--checkpoint", cp, "--public-key", pub, "--state", state).exit_code == 0
    signer = notes.Signer.from_text((Path(env.path("k")) / "signing.key").read_text())
    other = Path(env.path("cp-other"))
    other.write_text(notes.sign_note(notes.Checkpoint(signer.name, 6, bytes(32)).text(), signer).format())
    before = Path(state).read_text()
    r = env("verify", "--checkpoint", str(other), "--public-key", pub, "--state", state, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problem"]["kind"] == "fork"
    assert Path(state).read_text() == before


def test_tlog_proof_index_must_be_canonical_decimal(env: Env) -> None:
    env.append(12)
    cp = env.checkpoint("cp1")
    rec = Path(env.path("r.tlog-proof"))
    rec.write_text(env("receipt", "--position", "5", "--checkpoint", cp).stdout.replace("index 4", "index 04"))
    r = CliRunner().invoke(main, ["verify-proof", str(rec), "--public-key", env.path("k/verifier.pub")])
    assert r.exit_code == 2 and "no leading zeros" in r.stderr


def test_cosign_with_a_malformed_proof_file_is_a_usage_error(env: Env) -> None:
    assert env("keygen", "--name", "witness.example/w1", "--out", env.path("w"), "--cosigner").exit_code == 0
    pub, wstate = env.path("k/verifier.pub"), env.path("w/state.json")
    env.append(3)
    cp1 = env.checkpoint("cp1")
    assert (
        env("cosign", "--key", env.path("w"), "--checkpoint", cp1, "--public-key", pub, "--state", wstate).exit_code
        == 0
    )
    env.append(3)
    cp2 = env.checkpoint("cp2")
    bad = Path(env.path("bad.json"))
    bad.write_text('{"format": "nope"}')
    r = env(
        "cosign",
        "--key",
        env.path("w"),
        "--checkpoint",
        cp2,
        "--public-key",
        pub,
        "--state",
        wstate,
        "--proof",
        str(bad),
    )
    assert r.exit_code == 2 and "not a consistency proof" in r.stderr
    assert json.loads(Path(wstate).read_text())["tree_size"] == 3


def test_prove_refuses_a_checkpoint_the_log_no_longer_matches(env: Env) -> None:
    env.append(20)
    cp1 = env.checkpoint("cp1")
    _cut_and_reappend(env.db, keep=15, extra=8)
    r = env("prove", "inclusion", "--position", "3", "--checkpoint", cp1)
    assert r.exit_code == 2 and "do not have the checkpoint's root" in r.stderr and not r.stdout
