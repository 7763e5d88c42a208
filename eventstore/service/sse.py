"""Subscriptions: Server-Sent Events that catch up from a position, then follow the log live.

Each event is sent as ``id: <position>``, ``event: event``, ``data: <the event as 'read'
prints it>``; a client that reconnects with ``Last-Event-ID`` resumes after that position,
so nothing is missed or repeated. An idle subscription gets a comment line every
``heartbeat`` seconds. Appends made through this process wake subscribers at once (the
writer bumps a ``Notifier``); appends by other processes are found within ``poll``
seconds. A subscriber whose credential is revoked or expires gets ``event: error`` and the
stream ends (checked about once a second).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable

import msgspec
from starlette.concurrency import run_in_threadpool

from ..records import RecordedEvent
from ..store import EventStore

PAGE = 500


class Notifier:
    """Wakes every waiting subscriber when the head moves (event-loop side only)."""

    def __init__(self) -> None:
        self.head = 0
        self._event = asyncio.Event()

    def bump(self, head: int) -> None:
        if head > self.head:
            self.head = head
        self._event.set()
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        """Take this before reading, then wait on it: an append in between is not missed."""
        return self._event


def _page(store: EventStore, position: int) -> list[RecordedEvent]:
    return list(itertools.islice(store.read_all(position, batch_size=PAGE), PAGE))


async def stream(
    store: EventStore,
    notifier: Notifier,
    start: int,
    *,
    heartbeat: float,
    poll: float,
    stopping: asyncio.Event,
    still_allowed: Callable[[], str | None] | None = None,
    recheck: float = 1.0,
) -> AsyncIterator[bytes]:
    """``still_allowed()`` (run in a thread at most every ``recheck`` seconds) returns why the
    subscriber's credential is no longer valid, or None; then the stream ends with an
    ``event: error``, so a revoked reader stops receiving within about a second."""
    encode = msgspec.json.encode
    position = max(1, start)
    yield b": subscribed\n\n"
    last_sent = last_check = time.monotonic()
    while not stopping.is_set():
        if still_allowed is not None and time.monotonic() - last_check >= recheck:
            last_check = time.monotonic()
            why = await run_in_threadpool(still_allowed)
            if why is not None:
                yield b"event: error\ndata: %s\n\n" % encode(
                    {"error": {"code": "unauthorized", "message": why, "path": None}}
                )
                return
        waiter = notifier.waiter()
        events = await run_in_threadpool(_page, store, position)
        if events:
            chunk = b"".join(b"id: %d\nevent: event\ndata: %s\n\n" % (ev.position, encode(ev)) for ev in events)
            position = events[-1].position + 1
            last_sent = time.monotonic()
            yield chunk
            continue
        try:
            await asyncio.wait_for(waiter.wait(), timeout=min(poll, heartbeat))
        except TimeoutError:
            pass
        if time.monotonic() - last_sent >= heartbeat:
            last_sent = time.monotonic()
            yield b": heartbeat\n\n"
