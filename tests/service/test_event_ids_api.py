"""Per-event ids over HTTP: a resent request (no Idempotency-Key) writes nothing the second time."""

from __future__ import annotations

import httpx

from eventstore import NewEvent
from eventstore.client import Client

from .conftest import Running


def test_a_resent_append_with_event_ids_counts_once(running: Running) -> None:
    body = {"events": [{"type": "note", "data": {"n": 1}, "id": "run-1/e1"}, {"type": "note", "data": {}, "id": "e2"}]}
    url = f"{running.url}/v1/streams/agent-7%2Frun-1/events"
    first = httpx.post(url, json=body, headers=running.headers("agent7"))
    again = httpx.post(url, json=body, headers=running.headers("agent7"))  # a retry after a lost answer
    assert first.status_code == again.status_code == 200
    assert again.json()["receipts"] == first.json()["receipts"]
    assert running.store.stream_version("agent-7/run-1") == 2
    assert [e.id for e in running.store.read_stream("agent-7/run-1")] == ["run-1/e1", "e2"]
    partial = httpx.post(
        url,
        json={"events": [body["events"][0], {"type": "note", "data": {}, "id": "e3"}]},
        headers=running.headers("agent7"),
    )
    assert partial.status_code == 400 and "not the others" in partial.json()["error"]["message"]
    assert running.store.stream_version("agent-7/run-1") == 2


def test_the_client_sends_event_ids(running: Running) -> None:
    with Client(running.url, running.tokens["agent7"]) as c:
        first = c.append("agent-7/run-2", [NewEvent(type="note", data={"x": 1}, id="only-once")])
        assert c.append("agent-7/run-2", [NewEvent(type="note", data={"x": 1}, id="only-once")]) == first
        assert [e.id for e in c.read_stream("agent-7/run-2")] == ["only-once"]
