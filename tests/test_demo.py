"""The demo finishes or fails, never hangs: run twice on a database, and with an agent that fails."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eventstore import EventStore, NewEvent

RUN = r"""
import sys
from eventstore import demo
r = demo.run(sys.argv[1], agents=2, sessions=1, seed=3)
print(r.events)
"""


def _demo(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        check=False, args=[sys.executable, "-c", RUN, url], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_demo_runs_twice_on_the_same_database(backend_url: str) -> None:
    first = _demo(backend_url)
    assert first.returncode == 0, first.stderr
    second = _demo(backend_url)  # on PostgreSQL the database keeps the first run's streams
    assert second.returncode == 0, second.stderr
    with EventStore.open(backend_url) as store:
        assert store.head()[0] == int(first.stdout) + int(second.stdout)
        assert store.verify().ok


@pytest.mark.slow
def test_an_agent_error_reaches_the_caller_instead_of_hanging(backend_url: str) -> None:
    with EventStore.open(backend_url) as store:  # agent 0's first session stream, taken already
        store.append("session-run1-agent0-s0", [NewEvent(type="note", data={})])
    r = _demo(backend_url)
    assert r.returncode == 1
    assert "WrongExpectedVersion: wrong expected version for stream 'session-run1-agent0-s0'" in r.stderr
