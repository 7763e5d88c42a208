"""eventstore.client: the store's interface over HTTP, subscriptions, retries."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import httpx
import pytest

from eventstore import EventTooLarge, InvalidEvent, NewEvent, WrongExpectedVersion
from eventstore.client import AsyncClient, Client, Forbidden, Unauthorized

from .conftest import Running


def test_client_has_the_store_interface(running: Running) -> None:
    with Client(running.url, running.tokens["agent7"]) as c:
        receipts = c.append("agent-7/run 1?", [NewEvent(type="note", data={"i": 1}), NewEvent(type="note")])
        assert [r.version for r in receipts] == [1, 2]
        assert c.stream_version("agent-7/run 1?") == 2
        events = list(c.read_stream("agent-7/run 1?", batch_size=1))
        assert [e.hash for e in events] == [r.hash for r in receipts]
        assert events == list(running.store.read_stream("agent-7/run 1?"))
        assert c.verify_receipt(receipts[0]).ok
        with pytest.raises(WrongExpectedVersion) as e:
            c.append("agent-7/run 1?", [NewEvent(type="note")], expected_version=0)
        assert (e.value.expected, e.value.actual) == (0, 2)
        with pytest.raises(InvalidEvent, match=r"\$.events\[0\].data.value"):
            c.append("agent-7/x", [NewEvent(type="metric.recorded", data={"metric": "m", "value": "v"})])
        with pytest.raises(EventTooLarge):
            c.append("agent-7/x", [NewEvent(type="note", data={"b": "x" * (2 << 20)})])
        with pytest.raises(Forbidden):
            c.append("elsewhere", [NewEvent(type="note")])
        many = c.append_many([("agent-7/a", [NewEvent(type="note")], None), ("agent-7/b", [NewEvent(type="note")], 0)])
        assert [[r.stream_id for r in rs] for rs in many] == [["agent-7/a"], ["agent-7/b"]]
    with Client(running.url, running.tokens["reader"]) as c:
        assert [e.position for e in c.read_all(batch_size=2)] == [e.position for e in running.store.read_all()]
        assert [e.position for e in c.read_all(3, to_position=4)] == [3, 4]
        assert c.head() == running.store.head()
    with Client(running.url, "es_not-a-token") as c, pytest.raises(Unauthorized):
        c.stream_version("x")
    assert "es_" not in repr(Client(running.url, running.tokens["admin"]))


def test_subscribe_catches_up_then_follows_live_and_resumes(running_sqlite: Running) -> None:
    r = running_sqlite
    start = r.store.head()[0] + 1
    with Client(r.url, r.tokens["admin"]) as c:
        c.append("s", [NewEvent(type="note", data={"i": 0})])
        got: list[int] = []
        done = threading.Event()

        def consume() -> None:
            with Client(r.url, r.tokens["reader"]) as sub:
                for ev in itertools.islice(sub.subscribe(start), 3):
                    got.append(ev.data["i"])
            done.set()

        t = threading.Thread(target=consume)
        t.start()
        c.append("s", [NewEvent(type="note", data={"i": 1})])
        c.append("s", [NewEvent(type="note", data={"i": 2})])
        assert done.wait(5), got  # woken by the appends, well within the 1 s poll
        t.join()
        assert got == [0, 1, 2]
    # Last-Event-ID resumes after the given position
    with httpx.stream(
        "GET", f"{r.url}/v1/events/subscribe", headers={**r.headers("reader"), "Last-Event-ID": str(start)}
    ) as resp:
        ids = []
        for line in resp.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
                if len(ids) == 2:
                    break
    assert ids == [start + 1, start + 2]


def test_appender_cannot_subscribe(running_sqlite: Running) -> None:
    resp = httpx.get(f"{running_sqlite.url}/v1/events/subscribe", headers=running_sqlite.headers("agent7"))
    assert resp.status_code == 403


def test_client_retries_with_the_same_idempotency_key(running_sqlite: Running) -> None:
    """The first answer is lost on the way back; the retry gets it again and nothing is written twice."""
    r = running_sqlite
    keys: list[str] = []
    real = httpx.HTTPTransport()

    class DropFirstAnswer(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            keys.append(request.headers.get("idempotency-key", ""))
            response = real.handle_request(request)
            if len(keys) == 1:
                response.read()
                raise httpx.ReadError("connection dropped", request=request)
            return response

    before = r.store.head()[0]
    with Client(r.url, r.tokens["agent7"], transport=DropFirstAnswer()) as c:
        receipts = c.append("agent-7/retry", [NewEvent(type="note")])
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]
    assert r.store.head()[0] == before + 1
    assert receipts[0].position == before + 1


def test_async_client(running_sqlite: Running) -> None:
    r = running_sqlite

    async def main() -> None:
        async with AsyncClient(r.url, r.tokens["agent7"]) as c:
            results = await asyncio.gather(*(c.append(f"agent-7/a{i}", [NewEvent(type="note")]) for i in range(20)))
            assert len({rs[0].position for rs in results}) == 20
            assert await c.stream_version("agent-7/a3") == 1
            assert [e.version async for e in c.read_stream("agent-7/a3")] == [1]
            assert (await c.verify_receipt(results[0][0])).ok
        async with AsyncClient(r.url, r.tokens["auditor"]) as a:
            proof = await a.prove_inclusion(3)
            assert proof.leaf_index == 2 and proof.tree_size == r.store.head()[0]
            assert (await a.prove_consistency(2)).old_size == 2

    asyncio.run(main())


def test_concurrent_retries_with_one_idempotency_key_write_once(running: Running) -> None:
    """Requests with the same key in flight at once: one executes, the others get its answer."""
    import concurrent.futures

    h = {**running.headers("agent7"), "Idempotency-Key": "same-key"}
    before = running.store.head()[0]

    def one(_: int) -> httpx.Response:
        return httpx.post(
            f"{running.url}/v1/streams/agent-7/once/events", json={"events": [{"type": "note"}]}, headers=h
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert running.store.head()[0] == before + 1


@pytest.mark.slow
def test_idle_connections_do_not_stop_appends(running_sqlite: Running) -> None:
    import socket

    r = running_sqlite
    port = int(r.url.rsplit(":", 1)[1])
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        with Client(r.url, r.tokens["agent7"]) as c:
            started = time.monotonic()
            for i in range(20):
                c.append("agent-7/busy", [NewEvent(type="note", data={"i": i})])
            assert time.monotonic() - started < 10
        assert r.store.stream_version("agent-7/busy") == 20
    finally:
        for s in idle:
            s.close()


def test_a_revoked_subscriber_is_cut_off(running_sqlite: Running) -> None:
    from eventstore.service.credentials import Credentials

    r = running_sqlite
    got: list[int] = []
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            with Client(r.url, r.tokens["reader"]) as sub:
                for ev in sub.subscribe(1):
                    got.append(ev.position)
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            failure.append(e)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got  # the credential events are there to catch up on
    Credentials(r.store).revoke("reader", revoked_by="test")
    t.join(timeout=5)
    assert not t.is_alive()
    assert failure and isinstance(failure[0], Unauthorized) and "revoked" in str(failure[0])


def test_checkpoints_and_proofs_through_the_client(backend_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from eventstore import EventStore, notes, proofs
    from eventstore.service import ServiceConfig

    from .conftest import make_tokens, start_service, stop_service

    signer = notes.Signer.generate("test.example/log")
    key = tmp_path / "signing.key"
    key.write_text(signer.to_text())
    store = EventStore.open(backend_url)
    tokens = make_tokens(store)
    _, server, url = start_service(store, ServiceConfig(access_log=False, signing_key=str(key)))
    try:
        with Client(url, tokens["admin"]) as c:
            receipts = c.append("s", [NewEvent(type="note", data={"i": i}) for i in range(5)])
        with Client(url, tokens["auditor"]) as a:
            with pytest.raises(Exception, match="no checkpoint"):
                a.latest_checkpoint()
            note = a.checkpoint()
            assert a.latest_checkpoint() == note
            cp = notes.open_checkpoint(note, signer.verifier)
            proof = a.prove_inclusion(receipts[2].position)
            assert proofs.check_inclusion(proof, cp).hash == receipts[2].hash
            entry, _ = proofs.check_tlog_proof(a.tlog_proof(receipts[2].position), signer.verifier)
            assert entry.position == receipts[2].position
            assert a.prove_consistency(2).new_size == cp.checkpoint.size
        with Client(url, tokens["reader"]) as r, pytest.raises(Forbidden):
            r.checkpoint()
    finally:
        stop_service(server)
        store.close()
