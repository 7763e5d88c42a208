"""PostgreSQL restarted under load with the service running (a dedicated cluster, tests/pg_dedicated.py):
clear 503s (or retries by the client) during the outage, recovery without restarting the service,
every 200's receipt in the log (by hash), and a log that verifies."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import msgspec
import pytest

from eventstore import EventStore, NewEvent
from eventstore.client import Client
from eventstore.errors import AppendOutcomeUnknown, ServiceError
from eventstore.service import ServiceConfig
from tests.pg_dedicated import Cluster, cluster  # noqa: F401  (fixture)
from tests.service.conftest import make_tokens, start_service, stop_service

pytestmark = pytest.mark.slow


def _raw_appender(url: str, token: str, stream: str, stop: threading.Event, answers: list[tuple[int, Any]]) -> None:
    """Single-event appends over one keep-alive connection; every answer kept (status, body)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        i = 0
        while not stop.is_set():
            try:
                r = http.post(
                    f"/v1/streams/{stream}/events",
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                    content=msgspec.json.encode({"events": [{"type": "note", "data": {"i": i}}]}),
                )
            except httpx.TransportError as e:
                answers.append((0, repr(e)))
                time.sleep(0.05)
                continue
            answers.append((r.status_code, (msgspec.json.decode(r.content), r.headers.get("retry-after"))))
            i += 1
            if r.status_code != 200:
                time.sleep(0.05)


def _client_appender(url: str, token: str, stream: str, stop: threading.Event, got: list[Any]) -> None:
    """eventstore.client.Client: retries 503s with the same Idempotency-Key by itself."""
    with Client(url, token, timeout=30, retries=8) as client:
        i = 0
        while not stop.is_set():
            try:
                got.append(client.append(stream, [NewEvent(type="note", data={"i": i})])[0])
            except (AppendOutcomeUnknown, ServiceError) as e:
                got.append(e)
            i += 1


def test_postgres_restart_under_load_gives_clear_503s_then_recovers(cluster: Cluster) -> None:  # noqa: F811
    db = cluster.create_database("svcrestart")
    store = EventStore.open(db, reconnect_timeout=1.0)
    tokens = make_tokens(store)
    service, server, url = start_service(store, ServiceConfig(access_log=False, retry_after=1))
    stop = threading.Event()
    raw: list[tuple[int, Any]] = []
    viaclient: list[Any] = []
    threads = [
        threading.Thread(target=_raw_appender, args=(url, tokens["agent7"], "agent-7/raw", stop, raw)),
        threading.Thread(target=_client_appender, args=(url, tokens["agent7"], "agent-7/client", stop, viaclient)),
    ]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while sum(1 for s, _ in raw if s == 200) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = len(raw)
        cluster.stop("immediate")  # a crash: recovery on start
        time.sleep(2.0)  # an outage longer than the store's reconnect_timeout: the service must answer 503
        deadline = time.monotonic() + 15  # the request in flight at the crash is answered once its reconnects give up
        while not any(s == 503 for s, _ in raw[before:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        during = len(raw)  # every answer so far was given while the database was down
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 503
        cluster.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # recovery without restarting the service
            if sum(1 for s, _ in raw[during:] if s == 200) >= 20 and httpx.get(f"{url}/readyz").status_code == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the service did not recover: last answers {raw[-3:]}")
        n_client = len(viaclient)
        deadline = time.monotonic() + 30
        while not any(not isinstance(x, Exception) for x in viaclient[n_client:]) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        stop_service(server)
        store.close()

    outage = raw[before:during]
    refused = [(s, body) for s, body in raw if s != 200]
    assert refused and any(s == 503 for s, _ in outage), "the outage produced no 503"
    for status, answer in refused:
        assert status == 503, (status, answer)  # never a 500 or a dropped connection
        body, retry_after = answer
        assert body["error"]["code"] in ("unavailable", "append_outcome_unknown") and retry_after, body
        if body["error"]["code"] == "append_outcome_unknown":
            assert "outcome is unknown" in body["error"]["message"] and body["error"]["last_hash"]
    receipts = [body for s, (body, _) in ((s, a) for s, a in raw if s == 200)]
    receipts = [r["receipts"][0] for r in receipts] + [r for r in viaclient if not isinstance(r, Exception)]
    assert any(not isinstance(r, Exception) for r in viaclient)
    with EventStore.open(db) as check:
        logged = {e.position: e.hash for e in check.read_all()}
        for r in receipts:
            r = r if isinstance(r, dict) else msgspec.to_builtins(r)
            assert logged.get(r["position"]) == r["hash"], f"a 200's receipt is not in the log: {r}"
        assert check.verify().ok
