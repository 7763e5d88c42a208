"""The writer in a child process (``--writer process``, what ``eventstore serve`` runs by default).

What a client relies on: every 200 is in the log and verifies, requests from many
connections share commits, a refused request writes nothing, a credential revoked after
the parent cached it is refused at commit, and a writer process that dies costs the
requests it held a 503 (outcome unknown) while the service recovers by itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from eventstore import EventStore
from eventstore.service import ServiceConfig
from eventstore.service.credentials import Credentials

from .conftest import Running, make_tokens, start_service, stop_service


@pytest.fixture
def proc_service(backend_url: str) -> Iterator[Running]:
    store = EventStore.open(backend_url)
    tokens = make_tokens(store)
    service, server, url = start_service(store, ServiceConfig(access_log=False, writer="process"))
    try:
        yield Running(url, store, service, tokens)
    finally:
        stop_service(server)
        store.close()


def _child_pid(r: Running) -> int:
    child = r.service.writer._child
    assert child is not None, "the service should run its writer in a child process"
    return int(child.process.pid)


def test_appends_from_many_connections_are_durable_and_share_commits(proc_service: Running) -> None:
    r = proc_service
    assert _child_pid(r) != os.getpid()
    got: list[dict] = []
    lock = threading.Lock()

    def agent(k: int) -> None:
        with httpx.Client(headers=r.headers("agent7"), timeout=10) as c:
            for i in range(25):
                resp = c.post(
                    f"{r.url}/v1/streams/agent-7/{k}/events", json={"events": [{"type": "note", "data": {"i": i}}]}
                )
                assert resp.status_code == 200, resp.text
                with lock:
                    got.extend(resp.json()["receipts"])

    threads = [threading.Thread(target=agent, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 200 and len({g["position"] for g in got}) == 200
    for g in got:
        row = r.store.backend.row_at(g["position"])
        assert row is not None and row.hash.hex() == g["hash"] and row.stream_id == g["stream_id"]
    assert r.store.verify().ok
    for k in range(8):  # each stream's versions are 1..25 in order
        assert sorted(g["version"] for g in got if g["stream_id"] == f"agent-7/{k}") == list(range(1, 26))
    metrics = httpx.get(f"{r.url}/metrics").text
    assert "eventstore_events_total" in metrics or "eventstore_events" in metrics


@pytest.mark.slow
def test_bursts_larger_than_the_socket_buffer_are_carried_whole(backend_url: str) -> None:
    """``eventstore serve`` (uvloop, the writer process): requests and answers of several hundred
    KB per burst, more than a socket buffer holds, cross between the event loop and the writer
    process without an error or a loss."""
    from .conftest import free_port
    from .test_crash import start_serve

    with EventStore.open(backend_url) as store:
        token = Credentials(store).create("big", "appender", ["big/*"], created_by="test")[0]
    port = free_port()
    proc = start_serve(backend_url, port)
    pad = "x" * 4000
    got: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def agent(k: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            for i in range(4):
                events = [{"type": "note", "data": {"k": k, "i": i, "j": j, "pad": pad}} for j in range(60)]
                resp = c.post(f"http://127.0.0.1:{port}/v1/streams/big/{k}/events", json={"events": events})
                with lock:
                    if resp.status_code == 200:
                        got.extend(g["position"] for g in resp.json()["receipts"])
                    else:
                        failures.append(resp.text)

    try:
        threads = [threading.Thread(target=agent, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert failures == []
    assert len(set(got)) == 8 * 4 * 60
    with EventStore.open(backend_url) as store:
        assert store.verify().ok


def test_wrong_version_and_principal_are_handled_in_the_child(proc_service: Running) -> None:
    r = proc_service
    h = r.headers("agent7")
    ok = httpx.post(
        f"{r.url}/v1/streams/agent-7/x/events",
        json={"events": [{"type": "note", "metadata": {"principal": "someone-else"}}], "expected_version": 0},
        headers=h,
    )
    assert ok.status_code == 200
    wrong = httpx.post(
        f"{r.url}/v1/streams/agent-7/x/events", json={"events": [{"type": "note"}], "expected_version": 0}, headers=h
    )
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "wrong_expected_version"
    [event] = list(r.store.read_stream("agent-7/x"))
    assert event.metadata["principal"] == "agent7"


def test_a_credential_revoked_after_it_was_cached_is_refused_at_commit(proc_service: Running) -> None:
    r = proc_service
    h = r.headers("agent7")
    url = f"{r.url}/v1/streams/agent-7/r/events"
    assert httpx.post(url, json={"events": [{"type": "note"}]}, headers=h).status_code == 200  # cached now
    Credentials(r.store).revoke("agent7", revoked_by="test")
    refused = httpx.post(url, json={"events": [{"type": "note"}]}, headers=h)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert r.store.stream_version("agent-7/r") == 1


def test_a_writer_process_that_dies_costs_a_503_and_the_service_recovers(proc_service: Running) -> None:
    """Killed under load: what it held is answered 503 (retryable, outcome unknown), never a
    false 200; a new writer process takes over without restarting the service."""
    r = proc_service
    first = _child_pid(r)
    acked: list[dict] = []
    after_kill: list[int] = []
    refused: list[httpx.Response] = []
    killed = threading.Event()
    stop = threading.Event()
    lock = threading.Lock()

    def agent(k: int) -> None:
        with httpx.Client(headers=r.headers("agent7"), timeout=30) as c:
            i = 0
            while not stop.is_set():
                i += 1
                resp = c.post(
                    f"{r.url}/v1/streams/agent-7/{k}/events", json={"events": [{"type": "note", "data": {"i": i}}]}
                )
                with lock:
                    if resp.status_code == 200:
                        acked.extend(resp.json()["receipts"])
                        if killed.is_set():
                            after_kill.append(k)
                    else:
                        refused.append(resp)

    threads = [threading.Thread(target=agent, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(first, signal.SIGKILL)
    killed.set()
    while len(after_kill) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    assert len(after_kill) >= 30, "appends did not resume after the writer process died"
    assert _child_pid(r) != first
    for resp in refused:
        assert resp.status_code == 503 and "retry-after" in resp.headers, resp.text
        assert "writer process exited" in resp.json()["error"]["message"]
    for g in acked:
        row = r.store.backend.row_at(g["position"])
        assert row is not None and row.hash.hex() == g["hash"]
    assert r.store.verify().ok
    assert httpx.get(f"{r.url}/readyz").status_code == 200


def test_payloads_reach_the_writer_process_intact(proc_service: Running) -> None:
    """Requests travel to the writer process as MessagePack: floats, non-ASCII text, nested
    values and nulls are stored exactly as sent (the entry hash would say otherwise)."""
    r = proc_service
    data = {"f": 0.1, "g": 1e300, "i": -(2**63), "s": "\u00e9\U0001f600", "n": None, "l": [1, [2.5, {"k": False}]]}
    resp = httpx.post(
        f"{r.url}/v1/streams/agent-7/values/events",
        json={"events": [{"type": "note", "data": data, "id": "v-1"}]},
        headers=r.headers("agent7"),
    )
    assert resp.status_code == 200, resp.text
    [event] = list(r.store.read_stream("agent-7/values"))
    assert event.data == data and event.id == "v-1"
    assert r.store.verify().ok


@pytest.mark.parametrize("writer", ["process", "queue"])
def test_record_conflicts_turns_a_409_into_evidence_naming_the_credential(backend_url: str, writer: str) -> None:
    store = EventStore.open(backend_url)
    tokens = make_tokens(store)
    service, server, url = start_service(store, ServiceConfig(access_log=False, writer=writer, record_conflicts=True))
    try:
        h = {"Authorization": f"Bearer {tokens['agent7']}"}
        body = {
            "events": [
                {
                    "type": "message.appended",
                    "data": {"session_id": "s1", "message_id": "m1", "role": "user", "content": "hi"},
                }
            ],
            "expected_version": 0,
        }
        assert httpx.post(f"{url}/v1/streams/agent-7/race/events", json=body, headers=h).status_code == 200
        lost = httpx.post(f"{url}/v1/streams/agent-7/race/events", json=body, headers=h)  # the slower agent
        assert lost.status_code == 409
        [collision] = list(store.read_stream("conflicts"))
        assert collision.type == "collision.detected"
        assert collision.data["agents"] == ["agent7"] and collision.data["session_id"] == "s1"
        assert (collision.data["stream_id"], collision.data["expected_version"], collision.data["actual_version"]) == (
            "agent-7/race",
            0,
            1,
        )
        assert store.stream_version("agent-7/race") == 1 and store.verify().ok
    finally:
        stop_service(server)
        store.close()
