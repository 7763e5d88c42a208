"""A running service per test: uvicorn on a free loopback port in a thread, over ``backend_url``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn

from eventstore import EventStore
from eventstore.service import Service, ServiceConfig
from eventstore.service.credentials import Credentials


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    url: str
    store: EventStore
    service: Service
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def start_service(store: EventStore, config: ServiceConfig | None = None) -> tuple[Service, uvicorn.Server, str]:
    service = Service(store, config or ServiceConfig(access_log=False))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            service.app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http="httptools",
        )
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.01)
    server._thread = t  # type: ignore[attr-defined]
    return service, server, f"http://127.0.0.1:{port}"


def stop_service(server: uvicorn.Server) -> None:
    server.should_exit = True
    server._thread.join(timeout=15)  # type: ignore[attr-defined]


def make_tokens(store: EventStore) -> dict[str, str]:
    creds = Credentials(store)
    return {
        "admin": creds.create("admin", "admin", created_by="test")[0],
        "agent7": creds.create("agent7", "appender", ["agent-7/*"], created_by="test")[0],
        "reader": creds.create("reader", "reader", created_by="test")[0],
        "auditor": creds.create("auditor", "auditor", created_by="test")[0],
    }


@pytest.fixture
def running(backend_url: str) -> Iterator[Running]:
    store = EventStore.open(backend_url)
    tokens = make_tokens(store)
    service, server, url = start_service(store)
    try:
        yield Running(url, store, service, tokens)
    finally:
        stop_service(server)
        store.close()


@pytest.fixture
def running_sqlite(sqlite_url: str) -> Iterator[Running]:
    store = EventStore.open(sqlite_url)
    tokens = make_tokens(store)
    service, server, url = start_service(store)
    try:
        yield Running(url, store, service, tokens)
    finally:
        stop_service(server)
        store.close()
