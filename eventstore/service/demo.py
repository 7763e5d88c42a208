"""The service demo: agents in separate processes append over HTTP with their own credentials;
an auditor credential takes a checkpoint and checks an offline proof.

    python -m eventstore.service.demo [DB]        # default: demo-service.db (created anew)

What it shows, in order: ``token create`` for three appenders and an auditor (secrets printed
once, stored as hashes); ``serve --project --signing-key`` started as a subprocess; three agent
processes appending a small session each through ``eventstore.client.Client`` (one also tries a
stream outside its patterns: 403, nothing written); the ``principal`` of each event; the auditor
signing a checkpoint through the service, verifying a receipt and an offline tlog-proof.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .. import notes, proofs
from ..client import Client, Forbidden
from ..records import NewEvent
from ..store import EventStore
from .credentials import Credentials


def _agent(url: str, token: str, k: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    session = f"s{k}"
    stream = f"agent-{k}/{session}"
    with Client(url, token) as store:
        receipts = store.append(stream, [
            NewEvent(type="session.started", data={"session_id": session, "model": "demo-model"},
                     metadata={"principal": "someone-else"}),  # replaced by the service
            NewEvent(type="message.appended", data={"session_id": session, "message_id": "m1", "role": "user",
                                                    "content": f"task {k}"}),
            NewEvent(type="tool.started", data={"session_id": session, "execution_id": "e1", "tool_name": "search",
                                                "input": {"q": "audit logs"}}),
            NewEvent(type="tool.finished", data={"session_id": session, "execution_id": "e1",
                                                 "status": "completed", "duration_ms": 12.5}),
        ], expected_version=0)
        refused = ""
        if k == 1:
            try:
                store.append("agent-2/s2", [NewEvent(type="note", data={"forged": True})])
            except Forbidden as e:
                refused = str(e)
    out.put((k, [r.position for r in receipts], refused))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(db: str, agents: int = 3) -> None:
    say = print
    with tempfile.TemporaryDirectory() as keys:
        signer = notes.Signer.generate("demo.example/log")
        key_file = Path(keys) / "signing.key"
        key_file.write_text(signer.to_text() + "\n")
        with EventStore.open(db) as store:
            creds = Credentials(store)
            tokens = {k: creds.create(f"agent-{k}", "appender", [f"agent-{k}/*"], created_by="demo")[0]
                      for k in range(1, agents + 1)}
            auditor = creds.create("auditor", "auditor", created_by="demo", expires_in=3600)[0]
        say(f"created {agents} appender credentials (agent-k may write agent-k/*) and an auditor; "
            "each secret is shown once and stored only as its SHA-256")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        serve = subprocess.Popen(
            [sys.executable, "-c", "from eventstore.cli import main; main()", "--db", db, "serve", "--bind",
             f"127.0.0.1:{port}", "--project", "--signing-key", str(key_file), "--no-access-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise RuntimeError("eventstore serve did not start")
                time.sleep(0.1)
            say(f"eventstore serve --project --signing-key … listening on {url}")
            ctx = mp.get_context("spawn")
            out = ctx.Queue()
            procs = [ctx.Process(target=_agent, args=(url, tokens[k], k, out)) for k in tokens]
            for p in procs:
                p.start()
            results = sorted(out.get(timeout=60) for _ in procs)
            for p in procs:
                p.join()
            for k, positions, refused in results:
                say(f"  agent-{k} (a separate process) appended positions {positions}")
                if refused:
                    say(f"  agent-{k} writing to agent-2/s2 was refused: {refused}")
            with Client(url, auditor) as audit:
                note = audit.checkpoint()
                size = int(note.splitlines()[1])
                say(f"auditor signed a checkpoint through the service: tree size {size}")
                with EventStore.open(db) as store:
                    ev = next(store.read_stream("agent-1/s1"))
                    say(f"  agent-1's first event: metadata.principal = {ev.metadata['principal']!r} "
                        "(the client sent 'someone-else')")
                    from ..records import Receipt

                    receipt = Receipt(position=ev.position, stream_id=ev.stream_id, version=ev.version,
                                      hash=ev.hash, prev_hash=ev.prev_hash, recorded_at=ev.recorded_at)
                report = audit.verify_receipt(receipt)
                say(f"  receipt of position {ev.position}: {'OK' if report.ok else 'INVALID'}")
                text = audit.tlog_proof(ev.position)
                entry, _ = proofs.check_tlog_proof(text, signer.verifier)
                say(f"  offline proof (c2sp tlog-proof) for position {entry.position} verified with the "
                    "public key alone")
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    with EventStore.open(db) as store:
        report = store.verify()
        say(f"verify: {'OK' if report.ok else 'FAILED'}, {report.checked} entries; "
            f"credential events: {[e.type for e in store.read_stream('credentials')]}")


def main() -> None:
    db = sys.argv[1] if len(sys.argv) > 1 else "demo-service.db"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    run(db)


if __name__ == "__main__":
    main()
