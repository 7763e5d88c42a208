"""Closing a store while other threads append: they get StoreClosed, the process never crashes.

SQLite crashes the process (SIGSEGV) when a connection is closed while another thread is
inside it, and a commit's last steps (the WAL checkpoint) run after the new head is already
visible to readers: a test that saw its append and closed the store killed the whole test run
once. The script runs in a subprocess so that a crash fails this test instead.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, sys, tempfile, threading, time
from eventstore import EventStore, NewEvent
from eventstore.errors import EventStoreError

d = tempfile.mkdtemp()
for k in range(100):
    store = EventStore.open(os.path.join(d, f"r{k}.db"))

    def appender() -> None:
        while True:
            try:
                store.append("s", [NewEvent(type="note", data={"k": k})])
            except EventStoreError:  # StoreClosed once closed
                return

    threads = [threading.Thread(target=appender) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.005)
    store.close()
    for t in threads:
        t.join()
print("ok")
"""


def test_closing_a_store_while_threads_append_never_crashes_the_process() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.returncode, run.stderr[-2000:])
