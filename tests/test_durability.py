"""Many processes, and processes killed mid-append: nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from eventstore import EventStore, Receipt

APPENDER = r"""
import sys, json
from eventstore import EventStore, NewEvent
url, name, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with EventStore.open(url, migrate=False) as store:
    for i in range(n):
        rs = store.append(f"{name}-{i % 5}", [NewEvent(type="tick", data={"w": name, "i": i, "k": k})
                                             for k in range(batch)])
        for r in rs:  # a receipt is printed only after append returned: i.e. acknowledged
            sys.stdout.write(json.dumps({"position": r.position, "stream_id": r.stream_id, "version": r.version,
                                         "hash": r.hash, "prev_hash": r.prev_hash, "recorded_at": r.recorded_at}) + "\n")
        sys.stdout.flush()
"""


def _spawn(url: str, name: str, n: int, batch: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", APPENDER, url, name, str(n), str(batch)], stdout=subprocess.PIPE, text=True
    )


def test_four_processes_append_concurrently_and_lose_nothing(tmp_path: Path) -> None:
    url = str(tmp_path / "c.db")
    EventStore.open(url).close()
    procs = [_spawn(url, f"p{k}", 60) for k in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    receipts = [msgspec.json.decode(line, type=Receipt) for out in outputs for line in out.splitlines()]
    assert len(receipts) == 240
    with EventStore.open(url) as store:
        assert sorted(r.position for r in receipts) == list(range(1, 241))
        report = store.verify()
        assert report.ok and report.checked == 240
        for k in range(4):
            for s in range(5):
                versions = [e.version for e in store.read_stream(f"p{k}-{s}")]
                assert versions == list(range(1, 13))
        assert all(store.verify_receipt(r).ok for r in receipts)


def test_sigkill_mid_append_leaves_a_verifying_log_with_every_acknowledged_event(tmp_path: Path) -> None:
    url = str(tmp_path / "k.db")
    EventStore.open(url).close()
    acknowledged: list[Receipt] = []
    for round_ in range(3):
        procs = [_spawn(url, f"r{round_}p{k}", 100_000, batch=7) for k in range(2)]
        first = [p.stdout.readline() for p in procs]  # type: ignore[union-attr]  # both are appending
        time.sleep(0.1 + 0.1 * round_)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
        for p, line in zip(procs, first):
            out = line + p.communicate()[0]
            # the last line may be cut mid-write by the kill: only complete lines were acknowledged
            for line in out.splitlines():
                try:
                    acknowledged.append(msgspec.json.decode(line, type=Receipt))
                except msgspec.DecodeError:
                    pass
    assert len(acknowledged) > 0
    with EventStore.open(url) as store:
        report = store.verify()
        assert report.ok, report.problem
        assert report.head_position >= max(r.position for r in acknowledged)
        for r in acknowledged:
            assert store.verify_receipt(r).ok
        # batches are atomic: every stream holds whole batches of 7
        counts: dict[str, int] = {}
        for e in store.read_all():
            counts[e.stream_id] = counts.get(e.stream_id, 0) + 1
        assert all(c % 7 == 0 for c in counts.values())
