"""The CLI against a running service: ``--db http://...`` with the credential in EVENTSTORE_TOKEN."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

from eventstore import NewEvent
from eventstore.audit import notes, proofs
from eventstore.cli import main
from eventstore.service.credentials import Credentials
from tests.service.conftest import Running


def _cli(running: Running, *args: str, token: str | None = "agent7", input: str | None = None) -> Result:
    env = {"EVENTSTORE_TOKEN": running.tokens[token] if token else "", "EVENTSTORE_DEBUG": "1"}
    return CliRunner().invoke(main, ["--db", running.url, *args], env=env, input=input)


def _err(result: Result) -> str:
    return result.stderr if hasattr(result, "stderr") else result.output


def test_append_and_read_over_http_record_the_principal(running_sqlite: Running) -> None:
    r = _cli(
        running_sqlite,
        "append",
        "--stream",
        "agent-7/run-1",
        "--type",
        "note",
        "--data",
        '{"x": 1}',
        "--metadata",
        '{"principal": "forged"}',
    )
    assert r.exit_code == 0, r.output
    receipt = json.loads(r.stdout.splitlines()[0])
    assert receipt["stream_id"] == "agent-7/run-1" and receipt["version"] == 1
    ev = next(running_sqlite.store.read_stream("agent-7/run-1"))
    assert ev.hash == receipt["hash"] and ev.metadata["principal"] == "agent7"

    r = _cli(running_sqlite, "read", "--stream", "agent-7/run-1")
    assert r.exit_code == 0, r.output
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["hash"] for e in got] == [ev.hash] and got[0]["data"] == {"x": 1}
    # the secret never reaches the output
    assert running_sqlite.tokens["agent7"] not in r.output


def test_append_jsonl_validates_every_line_before_sending(running_sqlite: Running, tmp_path: Path) -> None:
    good = '{"stream": "agent-7/a", "type": "note", "data": {"n": 1}}\n'
    r = _cli(running_sqlite, "append", "--jsonl", "-", input=good + '{"stream": "agent-7/a", "type": "", "data": {}}\n')
    assert r.exit_code == 2 and "line 2" in _err(r)
    assert running_sqlite.store.stream_version("agent-7/a") == 0
    r = _cli(running_sqlite, "append", "--jsonl", "-", input=good * 3)
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["version"] for x in r.stdout.splitlines()] == [1, 2, 3]


def test_verify_receipt_over_http(running_sqlite: Running, tmp_path: Path) -> None:
    receipts = running_sqlite.store.append("agent-7/x", [NewEvent(type="note", data={"i": i}) for i in range(3)])
    f = tmp_path / "receipts.jsonl"
    f.write_text("".join(msgspec.json.encode(r).decode() + "\n" for r in receipts))
    r = _cli(running_sqlite, "verify-receipt", str(f), token="auditor")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("OK: receipt for position") == 3
    forged = msgspec.to_builtins(receipts[0]) | {"hash": "00" * 32}
    f.write_text(json.dumps(forged) + "\n")
    r = _cli(running_sqlite, "verify-receipt", str(f), token="auditor")
    assert r.exit_code == 1 and r.stdout.startswith("FAILED")


def test_receipt_and_proofs_over_http_check_against_the_callers_checkpoint(
    running_sqlite: Running, tmp_path: Path
) -> None:
    store = running_sqlite.store
    store.append("agent-7/p", [NewEvent(type="note", data={"i": i}) for i in range(5)])
    signer = notes.Signer.generate("test.example/log")
    old = tmp_path / "old.cp"
    old.write_text(store.checkpoint(signer).format())
    store.append("agent-7/p", [NewEvent(type="note", data={"i": i}) for i in range(4)])
    new = tmp_path / "new.cp"
    new.write_text(store.checkpoint(signer).format())
    pub = tmp_path / "verifier.pub"
    pub.write_text(signer.verifier.to_text() + "\n")

    r = _cli(running_sqlite, "receipt", "--position", "3", "--checkpoint", str(old), token="auditor")
    assert r.exit_code == 0, r.output
    entry, signed = proofs.check_tlog_proof(r.stdout, signer.verifier)
    assert (
        entry.position == 3
        and signed.checkpoint.size == notes.Checkpoint.parse(notes.Note.parse(old.read_text()).text).size
    )

    r = _cli(running_sqlite, "prove", "inclusion", "--position", "2", "--checkpoint", str(new), token="auditor")
    assert r.exit_code == 0, r.output
    proof_file = tmp_path / "incl.json"
    proof_file.write_text(r.stdout)
    ok = CliRunner().invoke(main, ["verify-proof", str(proof_file), "--checkpoint", str(new), "--public-key", str(pub)])
    assert ok.exit_code == 0, ok.output

    r = _cli(running_sqlite, "prove", "consistency", "--old", str(old), "--new", str(new), token="auditor")
    assert r.exit_code == 0, r.output
    proof_file.write_text(r.stdout)
    ok = CliRunner().invoke(
        main,
        ["verify-proof", str(proof_file), "--checkpoint", str(old), "--checkpoint", str(new), "--public-key", str(pub)],
    )
    assert ok.exit_code == 0, ok.output

    # a checkpoint (validly signed) the service's log does not match: refused here, not printed
    cp = notes.Checkpoint.parse(notes.Note.parse(new.read_text()).text)
    fake = tmp_path / "fake.cp"
    fake.write_text(notes.sign_note(notes.Checkpoint(cp.origin, cp.size, b"\x01" * 32).text(), signer).format())
    r = _cli(running_sqlite, "receipt", "--position", "3", "--checkpoint", str(fake), token="auditor")
    assert r.exit_code == 2 and "does not check against the checkpoint" in _err(r), r.output
    assert r.stdout == ""


def test_appender_cannot_take_proofs(running_sqlite: Running, tmp_path: Path) -> None:
    store = running_sqlite.store
    store.append("agent-7/p", [NewEvent(type="note", data={})])
    cp = tmp_path / "cp"
    cp.write_text(store.checkpoint(notes.Signer.generate("t.example/log")).format())
    r = _cli(running_sqlite, "receipt", "--position", "1", "--checkpoint", str(cp), token="agent7")
    assert r.exit_code == 2
    assert _err(r).startswith("error: the service at http://127.0.0.1:") and "agent7" in _err(r)


@pytest.mark.parametrize("case", ["missing", "wrong", "revoked"])
def test_refused_credentials_are_one_line_exit_2_and_write_nothing(running_sqlite: Running, case: str) -> None:
    if case == "revoked":
        Credentials(running_sqlite.store).revoke("agent7", revoked_by="test")
    if case == "wrong":
        running_sqlite.tokens["wrong"] = "not-a-valid-token"
    token = {"missing": None, "wrong": "wrong", "revoked": "agent7"}[case]
    r = _cli(running_sqlite, "append", "--stream", "agent-7/r", "--type", "note", "--data", "{}", token=token)
    assert r.exit_code == 2, r.output
    err = _err(r)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert "EVENTSTORE_TOKEN" in err
    if case == "revoked":
        assert "revoked" in err
    assert running_sqlite.store.stream_version("agent-7/r") == 0
    for secret in running_sqlite.tokens.values():
        assert secret not in r.output


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "up"],
        ["init"],
        ["token", "list"],
        ["project", "status"],
        ["verify"],
        ["audit", "repair"],
        ["erase", "--subject", "s", "--requested-by", "x"],
        ["stats"],
        ["serve"],
        ["demo"],
    ],
)
def test_commands_that_need_the_database_say_so(running_sqlite: Running, args: list[str]) -> None:
    r = _cli(running_sqlite, *args, token="admin")
    assert r.exit_code == 2, r.output
    err = _err(r)
    assert err.startswith(f"error: 'eventstore {args[0]}' needs a database URL") and len(err.splitlines()) == 1
    assert running_sqlite.tokens["admin"] not in r.output


def test_an_unreachable_service_is_one_line(tmp_path: Path) -> None:
    from tests.service.conftest import free_port

    url = f"http://user:pw@127.0.0.1:{free_port()}"
    r = CliRunner().invoke(
        main, ["--db", url, "read"], env={"EVENTSTORE_TOKEN": "t0ken-value", "EVENTSTORE_DEBUG": "1"}
    )
    assert r.exit_code == 2
    assert _err(r).startswith("error: ") and "pw" not in r.output and "t0ken-value" not in r.output
