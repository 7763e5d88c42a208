"""``eventstore serve`` as a subprocess, killed under load: every 200 a client got is in the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from eventstore import EventStore
from eventstore.service.credentials import Credentials

from .conftest import free_port

pytestmark = pytest.mark.slow


def start_serve(db: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from eventstore.cli import main; main()",
            "--db",
            db,
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--no-access-log",
            "--log-json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_under_load_every_acknowledged_append_is_in_the_log(backend_url: str, sig: int) -> None:
    with EventStore.open(backend_url) as store:
        token = Credentials(store).create("load", "appender", ["load/*"], created_by="test")[0]
    port = free_port()
    proc = start_serve(backend_url, port)
    acked: list[dict] = []
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load(k: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5) as c:
            i = 0
            while not stop.is_set() and i < 5000:
                i += 1
                try:
                    r = c.post(
                        f"http://127.0.0.1:{port}/v1/streams/load/{k}/events",
                        json={"events": [{"type": "note", "data": {"k": k, "i": i}}]},
                    )
                except httpx.TransportError as e:
                    errors.append(type(e).__name__)
                    if proc.poll() is not None:
                        return
                    continue
                if r.status_code == 200:
                    with lock:
                        acked.extend(r.json()["receipts"])
                else:
                    errors.append(str(r.status_code))

    threads = [threading.Thread(target=load, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=20)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    if sig == signal.SIGTERM:  # a clean stop (uvicorn re-raises the signal after shutting down, as systemd expects)
        log = proc.stderr.read().decode() if proc.stderr else ""
        assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in log, log
    assert len(acked) >= 200
    with EventStore.open(backend_url) as store:
        for rec in acked:
            row = store.backend.row_at(rec["position"])
            assert row is not None and row.hash.hex() == rec["hash"], rec
        report = store.verify()
        assert report.ok, report
        # nothing but what was acknowledged or in flight: every stored event came from a request
        assert report.checked >= len(acked) + 1


def test_sigterm_ends_open_subscriptions_promptly(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        token = Credentials(store).create("r", "reader", created_by="test")[0]
    port = free_port()
    proc = start_serve(sqlite_url, port)
    with httpx.stream(
        "GET", f"http://127.0.0.1:{port}/v1/events/subscribe", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as resp:
        lines = resp.iter_lines()
        assert next(lines).startswith(":")  # subscribed
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        for _ in lines:  # ends when the service closes the stream
            pass
    proc.wait(timeout=20)
    assert time.monotonic() - started < 5
