"""The service demo: agents in separate processes append over HTTP with their own credentials;
an auditor credential takes a checkpoint and checks an offline proof.

    python -m eventstore.service.demo [DB]        # default: demo-service.db (created anew)

``eventstore demo`` (``make demo``) runs it after the library demo, on the same database.

What it shows, in order: ``token create`` for the appenders and an auditor (secrets printed
nowhere, stored as hashes); ``serve --project --signing-key`` started as a subprocess on a free
loopback port; agent processes appending a small session each through
``eventstore.client.Client`` (one also tries a stream outside its patterns: 403, nothing
written); the ``principal`` of each agent's events; the auditor signing a checkpoint through
the service, verifying a receipt and an offline tlog-proof.

It finishes or fails, never hangs: every wait is bounded (``timeout``) and the server and
the agents are always stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .. import notes, proofs
from ..client import Client, Forbidden
from ..errors import EventStoreError
from ..records import NewEvent, Receipt
from ..store import EventStore
from .credentials import Credentials

Say = Callable[[str], None]


def _agent(url: str, token: str, k: int, stream: str, other: str | None, out: Any) -> None:
    """One agent process: a small session over HTTP; reports (k, positions, refusal, error)."""
    try:
        session = stream.replace("/", "-")  # unique per agent (the read models key sessions by it)
        with Client(url, token, timeout=10.0, retries=3) as store:
            receipts = store.append(
                stream,
                [
                    NewEvent(
                        type="session.started",
                        data={"session_id": session, "model": "demo-model"},
                        metadata={"principal": "someone-else"},
                    ),  # replaced by the service
                    NewEvent(
                        type="message.appended",
                        data={"session_id": session, "message_id": "m1", "role": "user", "content": f"task {k}"},
                    ),
                    NewEvent(
                        type="tool.started",
                        data={
                            "session_id": session,
                            "execution_id": "e1",
                            "tool_name": "search",
                            "input": {"q": "audit logs"},
                        },
                    ),
                    NewEvent(
                        type="tool.finished",
                        data={"session_id": session, "execution_id": "e1", "status": "completed", "duration_ms": 12.5},
                    ),
                ],
                expected_version=0,
            )
            refused = ""
            if other is not None:
                try:
                    store.append(other, [NewEvent(type="note", data={"forged": True})])
                    refused = "NOT REFUSED"
                except Forbidden as e:
                    refused = str(e)
        out.put((k, [r.position for r in receipts], refused, ""))
    except BaseException as e:  # reported, never a silent death
        out.put((k, [], "", f"{type(e).__name__}: {e}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _names(store: EventStore, agents: int) -> tuple[list[str], str]:
    """Credential names not used yet (names are never reused; a PostgreSQL demo may run twice)."""
    taken = {c.name for c in Credentials(store).list()}
    n = 0
    while True:
        tag = f"-{n}" if n else ""
        names = [f"agent-{k}{tag}" for k in range(1, agents + 1)]
        if not (taken & {*names, f"auditor{tag}"}):
            return names, f"auditor{tag}"
        n += 1


def _start_server(db: str, key_file: Path, log: Path, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as err:
        serve = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from eventstore.cli import main; main()",
                "--db",
                db,
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--project",
                "--signing-key",
                str(key_file),
                "--no-access-log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return serve, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or serve.poll() is not None:
            _stop(serve)
            lines = log.read_text(errors="replace").strip().splitlines()
            why = f": {lines[-1]}" if lines else ""
            raise EventStoreError(f"eventstore serve did not become ready within {timeout:g} s{why}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the service finishes what is committed), then SIGKILL if it takes too long."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_service(
    db: str, *, agents: int = 3, signing_key: str | Path | None = None, say: Say = print, timeout: float = 60.0
) -> dict[str, Any]:
    """Run the service demo on ``db`` (created and migrated if needed); return its summary.

    ``signing_key``: the log's key file (``keygen``'s signing.key); a temporary one if None.
    Raises EventStoreError when the server does not start, an agent fails or a wait overruns.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eventstore-demo-") as tmp:
        if signing_key is None:
            signing_key = Path(tmp) / "signing.key"
            Path(signing_key).write_text(notes.Signer.generate("demo.example/log").to_text() + "\n")
        signer = notes.Signer.from_text(Path(signing_key).read_text())
        with EventStore.open(db) as store:
            names, auditor_name = _names(store, agents)
            creds = Credentials(store)
            tokens = [creds.create(n, "appender", [f"{n}/*"], created_by="demo", expires_in=3600)[0] for n in names]
            auditor = creds.create(auditor_name, "auditor", created_by="demo", expires_in=3600)[0]
        say(
            f"created {agents} appender credentials ({names[0]} may write {names[0]}/* ...) and an auditor "
            f"({auditor_name}); each secret is handed to its agent only and stored as its SHA-256"
        )
        serve, url = _start_server(db, Path(signing_key), Path(tmp) / "serve.log", min(timeout, 30.0))
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs: list[Any] = []
        try:
            say(f"eventstore serve --project --signing-key ... listening on {url}")
            streams = [f"{n}/session-1" for n in names]
            procs = [
                ctx.Process(
                    target=_agent,
                    args=(url, tokens[i], i + 1, streams[i], streams[1] if i == 0 and agents > 1 else None, out),
                )
                for i in range(agents)
            ]
            for p in procs:
                p.start()
            deadline = time.monotonic() + timeout
            results: list[Any] = []
            while len(results) < len(procs):
                try:
                    results.append(out.get(timeout=0.2))
                    continue
                except queue.Empty:
                    pass
                dead = [i for i, p in enumerate(procs) if p.exitcode not in (None, 0)]
                if dead and out.empty():
                    raise EventStoreError(f"demo agent {names[dead[0]]} died (exit code {procs[dead[0]].exitcode})")
                if time.monotonic() > deadline:
                    raise EventStoreError(f"a demo agent did not finish within {timeout:g} s")
            results.sort()
            for k, positions, refused, error in results:
                if error:
                    raise EventStoreError(f"demo agent {names[k - 1]} failed: {error}")
                say(f"  {names[k - 1]} (a separate process) appended positions {positions}")
                if refused:
                    say(f"  {names[k - 1]} writing to {streams[1]} was refused: {refused}")
            with EventStore.open(db) as store:
                principals = {}
                for n, s in zip(names, streams):
                    principals[n] = sorted({ev.metadata.get("principal") for ev in store.read_stream(s)})
                first = next(store.read_stream(streams[0]))
            say(
                f"  {names[0]}'s first event: metadata.principal = {first.metadata['principal']!r} "
                "(the client sent 'someone-else')"
            )
            with Client(url, auditor, timeout=10.0, retries=3) as audit:
                note = audit.checkpoint()
                size = notes.open_checkpoint(note, signer.verifier).checkpoint.size
                say(f"{auditor_name} signed a checkpoint through the service: tree size {size}")
                receipt = Receipt(
                    position=first.position,
                    stream_id=first.stream_id,
                    version=first.version,
                    hash=first.hash,
                    prev_hash=first.prev_hash,
                    recorded_at=first.recorded_at,
                )
                report = audit.verify_receipt(receipt)
                say(f"  receipt of position {first.position}: {'OK' if report.ok else 'INVALID'}")
                entry, _ = proofs.check_tlog_proof(audit.tlog_proof(first.position), signer.verifier)
                say(
                    f"  offline proof (c2sp tlog-proof) for position {entry.position} verified with the "
                    "public key alone"
                )
        finally:
            _stop(serve)
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
    return {
        "url": url,
        "agents": agents,
        "credentials": [*names, auditor_name],
        "events": sum(len(r[1]) for r in results),
        "principals": principals,
        "refused_outside_patterns": bool(results[0][2]) if agents > 1 else None,
        "checkpoint_size": size,
        "receipt_position": first.position,
        "receipt_ok": report.ok,
        "tlog_proof_ok": entry.position == first.position,
        "seconds": round(time.perf_counter() - started, 3),
    }


def run(db: str, agents: int = 3) -> None:
    """The demo on its own: the service part, then the chain verified (what the module's main runs)."""
    run_service(db, agents=agents)
    with EventStore.open(db) as store:
        report = store.verify()
        print(
            f"verify: {'OK' if report.ok else 'FAILED'}, {report.checked} entries; "
            f"credential events: {[e.type for e in store.read_stream('credentials')]}"
        )


def main() -> None:
    db = sys.argv[1] if len(sys.argv) > 1 else "demo-service.db"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    run(db)


if __name__ == "__main__":
    main()
