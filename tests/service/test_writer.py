"""The one writer: batching, one request's fault never fails another, backpressure, slow clients."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from eventstore import EventStore, InvalidEvent, NewEvent, WrongExpectedVersion
from eventstore.service import ServiceConfig
from eventstore.service.writer import CredentialRefused, Overloaded, Writer

from .conftest import Running, make_tokens, start_service, stop_service

EV = [NewEvent(type="note")]


@pytest.mark.parametrize("mode", ["queue", "threads"])
def test_a_failing_request_in_a_batch_fails_alone(store: EventStore, mode: str) -> None:
    store.append("x", EV)

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        w = Writer(store, mode=mode, refused=lambda names: {n: "revoked" for n in names if n == "mallory"})
        w._loop = loop
        requests = [
            [("x", EV, 1)],  # right expected version
            [("x", EV, 1)],  # now wrong: x is at 2 after the first
            [("y", EV, None)],
            [("z", [NewEvent(type="")], None)],  # invalid (the service validates before; the writer copes)
            [("a", EV, None), ("b", EV, 0)],  # a multi-stream request, atomic
            [("w", EV, None)],  # from a revoked credential
        ]
        principals = [None, None, None, None, None, "mallory"]
        if mode == "threads":  # a thread hop per request: no batch, the store's group commit instead
            w.start(loop)
        tasks = [asyncio.ensure_future(w.submit(r, p)) for r, p in zip(requests, principals)]
        await asyncio.sleep(0)  # all queued before the writer starts: one batch
        if mode == "queue":
            w.start(loop)
        out = await asyncio.gather(*tasks, return_exceptions=True)
        await loop.run_in_executor(None, w.stop)
        return out

    x1, x2, y, invalid, multi, refused = asyncio.run(main())
    ok1, wrong = (x1, x2) if isinstance(x2, Exception) else (x2, x1)  # threads: either may commit first
    assert isinstance(wrong, WrongExpectedVersion) and (wrong.expected, wrong.actual) == (1, 2)
    assert isinstance(invalid, InvalidEvent)
    assert isinstance(refused, CredentialRefused) and refused.reason == "revoked"
    assert ok1[0][0].version == 2 and y[0][0].stream_id == "y"  # type: ignore[index]
    assert [rs[0].stream_id for rs in multi] == ["a", "b"]  # type: ignore[union-attr]
    assert store.stream_version("w") == 0 and store.stream_version("z") == 0
    assert store.verify().ok and store.head()[0] == 5


def test_queue_full_gives_overloaded(sqlite_store: EventStore) -> None:
    async def main() -> None:
        w = Writer(sqlite_store, max_pending=2)
        w._loop = asyncio.get_running_loop()
        first = [asyncio.ensure_future(w.submit([("s", EV, None)])) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await w.submit([("s", EV, None)])
        w.start(asyncio.get_running_loop())
        await asyncio.gather(*first)
        await asyncio.get_running_loop().run_in_executor(None, w.stop)

    asyncio.run(main())
    assert sqlite_store.head()[0] == 2


@pytest.fixture
def small_service(sqlite_url: str) -> Iterator[Running]:
    store = EventStore.open(sqlite_url)
    tokens = make_tokens(store)
    service, server, url = start_service(store, ServiceConfig(access_log=False, max_pending=1, body_timeout=0.5))
    try:
        yield Running(url, store, service, tokens)
    finally:
        stop_service(server)
        store.close()


def test_http_503_with_retry_after_when_the_queue_is_full(small_service: Running) -> None:
    r = small_service
    gate = threading.Event()
    real = r.store.append_many

    def slow(batch):  # type: ignore[no-untyped-def]
        gate.wait(5)
        return real(batch)

    r.store.append_many = slow  # type: ignore[method-assign]
    h = r.headers("admin")
    results: list[int] = []
    t = threading.Thread(
        target=lambda: results.append(
            httpx.post(f"{r.url}/v1/streams/s/events", json={"events": [{"type": "t"}]}, headers=h).status_code
        )
    )
    t.start()
    deadline = time.monotonic() + 5
    while r.service.writer.pending < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    resp = httpx.post(f"{r.url}/v1/streams/s/events", json={"events": [{"type": "t"}]}, headers=h)
    gate.set()
    t.join()
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    assert resp.json()["error"]["code"] == "overloaded"
    assert results == [200] and r.store.stream_version("s") == 1


def test_slow_sending_client_gets_408_and_writes_nothing(small_service: Running) -> None:
    r = small_service
    before = r.store.head()[0]
    port = int(r.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            f"POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {r.tokens['admin']}\r\n"
            'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"events": ['.encode()
        )
        s.settimeout(5)
        started = time.monotonic()
        answer = s.recv(4096).decode()
        assert time.monotonic() - started < 3
        while "request_timeout" not in answer and (chunk := s.recv(4096)):
            answer += chunk.decode()
    assert answer.startswith("HTTP/1.1 408") and "request_timeout" in answer
    # others are served meanwhile, and nothing was written
    assert httpx.get(f"{r.url}/healthz").status_code == 200
    assert r.store.head()[0] == before


def test_database_failure_is_503_and_not_ready_until_an_append_succeeds(running_sqlite: Running) -> None:
    from eventstore.errors import BackendError

    r = running_sqlite
    real = r.store.append_many
    broken = {"on": True}

    def flaky(batch):  # type: ignore[no-untyped-def]
        if broken["on"]:
            raise BackendError("append failed, nothing was written: connection lost")
        return real(batch)

    r.store.append_many = flaky  # type: ignore[method-assign]
    h = r.headers("admin")
    resp = httpx.post(f"{r.url}/v1/streams/s/events", json={"events": [{"type": "t"}]}, headers=h)
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "unavailable" and "retry-after" in resp.headers
    ready = httpx.get(f"{r.url}/readyz")
    assert ready.status_code == 503 and "BackendError" in ready.json()["error"]["message"]
    broken["on"] = False
    assert httpx.post(f"{r.url}/v1/streams/s/events", json={"events": [{"type": "t"}]}, headers=h).status_code == 200
    assert httpx.get(f"{r.url}/readyz").status_code == 200


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_request = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.integers(0, 3)), st.integers(1, 3), st.booleans()
    ),
    min_size=1,
    max_size=2,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(_request, min_size=1, max_size=12))
def test_batched_requests_commit_all_or_nothing_each(
    tmp_path_factory: pytest.TempPathFactory, requests: list[list[tuple[str, int | None, int, bool]]]
) -> None:
    """Whatever mix of requests shares a batch: each one commits whole or writes nothing, every
    receipt is in the log, the log holds nothing else, and the chain verifies."""
    url = str(tmp_path_factory.mktemp("w") / "w.db")
    with EventStore.open(url) as store:

        async def main() -> list[object]:
            loop = asyncio.get_running_loop()
            w = Writer(store)
            w._loop = loop
            tasks = [
                asyncio.ensure_future(
                    w.submit(
                        [
                            (s, [NewEvent(type="note" if ok else "", data={"n": n}) for _ in range(n)], exp)
                            for s, exp, n, ok in req
                        ]
                    )
                )
                for req in requests
            ]
            await asyncio.sleep(0)
            w.start(loop)
            out = await asyncio.gather(*tasks, return_exceptions=True)
            await loop.run_in_executor(None, w.stop)
            return out

        outcomes = asyncio.run(main())
        written = 0
        for req, out in zip(requests, outcomes):
            if isinstance(out, Exception):
                assert isinstance(out, (WrongExpectedVersion, InvalidEvent))
                continue
            assert all(ok for _, _, _, ok in req)
            for (s, exp, n, _), receipts in zip(req, out):  # type: ignore[call-overload]
                assert len(receipts) == n and {r.stream_id for r in receipts} == {s}
                if exp is not None:
                    assert receipts[0].version == exp + 1
                for r in receipts:
                    row = store.backend.row_at(r.position)
                    assert row is not None and row.hash.hex() == r.hash
                written += n
        report = store.verify()
        assert report.ok and report.checked == written
