"""The one writer: every connection's appends feed one queue and share commits.

Two strategies, chosen by ``ServiceConfig.writer`` (docs/performance.md has the figures):

- ``"queue"`` (default): one dedicated thread drains the queue and commits everything
  waiting in one ``append_many`` (one transaction, one disk sync), then resolves all
  the requests' futures with one call into the event loop. No thread hop per request.
- ``"threads"``: each request hops into a thread pool whose threads call
  ``EventStore.append``; the store's group commit coalesces them.
- ``"process"`` (what ``eventstore serve`` uses on a database file or server): the same
  queue writer, in a child process that opens the store again by URL. The event loop
  sends each burst of requests down a pipe in one message and reads the answers with
  ``add_reader``; the commits (encoding, hashing, the insert, the disk sync) then run on
  the other core instead of taking the event loop's GIL, and a commit overlaps the
  parsing of the next requests. If the child dies, the requests it held are answered
  503 (``WriterExited``: outcome unknown, retry with the same ids) and a new child starts.

``append_many`` is all or none, so when a batch fails on a wrong expected version the
writer commits again without the requests that carry an expected version, then tries
each of those alone: a request's outcome never depends on another request.
Events are validated (``EventStore.prepare``) before they are queued, so an invalid
request is answered 400 at once and cannot push a batch into that slow path.

The queue is bounded (``max_pending`` requests): beyond it ``Overloaded`` is raised
(503 with Retry-After), never an unbounded heap. A request is answered only after its
commit returned, i.e. once durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection  # the child's end: blocking reads and writes
from typing import Any

import msgspec

from ..errors import (  # noqa: F401  (defined in eventstore.errors, the one hierarchy)
    CredentialRefused,
    EventStoreError,
    Overloaded,
    ShuttingDown,
    UserError,
    WriterExited,
    WrongExpectedVersion,
)
from ..records import NewEvent, Receipt
from ..store import EventStore

log = logging.getLogger("eventstore.service")

Item = tuple[str, Sequence[NewEvent], "int | None"]


class _Unit:
    """One request: its items commit together or not at all."""

    __slots__ = ("items", "principal", "future", "key", "events", "result", "error")

    def __init__(
        self,
        items: Sequence[Item],
        principal: str | None,
        future: asyncio.Future[list[list[Receipt]]] | None,
        key: int = 0,
    ):
        self.items = items
        self.principal = principal
        self.future = future
        self.key = key  # process mode: names the request across the pipe
        self.events = sum(len(e) for _, e, _ in items)
        self.result: list[list[Receipt]] | None = None
        self.error: BaseException | None = None


class Writer:
    def __init__(
        self,
        store: EventStore,
        *,
        mode: str = "queue",
        max_pending: int = 1024,
        max_batch_events: int = 5000,
        threads: int = 32,
        on_commit: Callable[[int, int], None] | None = None,
        refused: Callable[[set[str]], dict[str, str]] | None = None,
        answer: Callable[[list[_Unit]], None] | None = None,
        record_conflicts: bool = False,
    ):
        if mode not in ("queue", "threads", "process"):
            raise ValueError(f"writer mode must be 'queue', 'threads' or 'process', not {mode!r}")
        self.store = store
        self.mode = mode
        self.max_pending = max_pending
        self.max_batch_events = max_batch_events
        self.on_commit = on_commit  # (events in the commit, head position), called in the writer thread
        self.refused = refused  # credential names -> why refused now (one query per batch)
        self.pending = 0  # requests queued or being committed (event loop's view)
        self.last_progress = time.monotonic()  # for /readyz: a writer with work that made no progress is stuck
        self.failing: str | None = None  # why the last commit failed, until one succeeds (for /readyz)
        self._queue: deque[_Unit] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._checker: threading.Thread | None = None
        self._checked: deque[_Unit] = deque()  # credentials checked, waiting for the writer
        self._checker_done = False
        self._pool: ThreadPoolExecutor | None = None
        self._threads = threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._answer_hook = answer  # in the writer process: answers go down the pipe
        self.record_conflicts = record_conflicts
        self._child: _Child | None = None
        self._child_done = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        if self.mode == "process":
            assert loop is not None
            self._child = _Child(self, loop)
        elif self.mode == "queue":
            self._thread = threading.Thread(target=self._run, name="eventstore-writer", daemon=True)
            self._thread.start()
            if self.refused is not None:
                self._checker = threading.Thread(target=self._run_checker, name="eventstore-credentials", daemon=True)
                self._checker.start()
        else:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="eventstore-append")

    def stop(self) -> None:
        """Stop accepting; commit and answer everything already queued."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._child is not None:
            self._child.stop()
        if self._checker is not None:
            self._checker.join()
        if self._thread is not None:
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    @property
    def stuck(self) -> bool:
        return self.pending > 0 and time.monotonic() - self.last_progress > 30

    async def submit(self, items: list[Item], principal: str | None = None) -> list[list[Receipt]]:
        """Queue one request's appends; return its receipts once durable.

        With ``principal``, the credential is checked again right before the commit.
        """
        if self._stopping:
            raise ShuttingDown("the service is shutting down")
        if self.pending >= self.max_pending:
            raise Overloaded(f"the write queue is full ({self.max_pending} requests)")
        loop = asyncio.get_running_loop()
        self.pending += 1
        try:
            if self.mode == "threads":
                assert self._pool is not None
                return await loop.run_in_executor(self._pool, self._append_direct, items, principal)
            fut: asyncio.Future[list[list[Receipt]]] = loop.create_future()
            unit = _Unit(items, principal, fut)
            if self._child is not None:
                self._child.send(unit)
            else:
                self.enqueue(unit)
            # Cancelling this await (a client gone, a forced shutdown) cancels only the wait: the
            # writer commits the request anyway and skips answering a future that is done.
            return await fut
        finally:
            self.pending -= 1

    def enqueue(self, unit: _Unit) -> None:
        """Queue mode: hand one request to the writer thread (from any thread)."""
        with self._cond:
            if self._stopping:
                raise ShuttingDown("the service is shutting down")
            self._queue.append(unit)
            if len(self._queue) == 1:
                self._cond.notify_all()

    # -- threads mode ---------------------------------------------------------------
    def _append_direct(self, items: list[Item], principal: str | None) -> list[list[Receipt]]:
        if principal is not None and self.refused is not None:
            why = self.refused({principal}).get(principal)
            if why is not None:
                raise CredentialRefused(principal, why)
        try:
            if len(items) == 1:
                stream_id, events, expected = items[0]
                result = [self.store.append(stream_id, events, expected_version=expected)]
            else:
                result = self.store.append_many(items)
        except UserError:
            raise
        except EventStoreError as e:
            self.failing = f"the last append failed: {type(e).__name__}"
            raise
        self.failing = None
        self.last_progress = time.monotonic()
        if self.on_commit is not None:
            self.on_commit(sum(len(r) for r in result), result[-1][-1].position)
        return result

    # -- queue mode -----------------------------------------------------------------
    def _run_checker(self) -> None:
        """First stage: check the credentials of everything queued (one query), pass the rest on.

        It runs beside the writer, so the query overlaps the previous commit instead of
        adding a round trip to each. A request is checked only after it arrived, so a
        credential revoked before a request is refused for it.
        """
        assert self.refused is not None
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    self._checker_done = True
                    self._cond.notify_all()
                    return
                units = list(self._queue)
                self._queue.clear()
            bad = self._check(units)
            if bad:
                self._answer(bad)
            with self._cond:
                self._checked.extend(u for u in units if u.error is None)
                self._cond.notify_all()

    def _check(self, units: list[_Unit]) -> list[_Unit]:
        """Check the credentials of ``units`` in one query; mark and return the refused ones.

        A request is checked only after it arrived, so a credential revoked before a request
        is refused for it."""
        assert self.refused is not None
        names = {u.principal for u in units if u.principal is not None}
        try:
            refused = self.refused(names) if names else {}
        except Exception as e:
            err = (
                e
                if isinstance(e, EventStoreError)
                else EventStoreError(f"cannot check credentials: {type(e).__name__}")
            )
            for u in units:
                u.error = err
            return list(units)
        for u in units:
            if u.principal in refused:
                u.error = CredentialRefused(u.principal, refused[u.principal])
        return [u for u in units if u.error is not None]

    def process(self, units: list[_Unit]) -> None:
        """The writer process's loop body: check, commit and answer ``units`` in this thread.

        One thread, so a burst costs no hand-off between threads (waking another thread or
        process is a large part of a cycle's cost on a small machine)."""
        ok = units
        if self.refused is not None and self._check(units):
            ok = [u for u in units if u.error is None]
        i = 0
        while i < len(ok):
            batch: list[_Unit] = []
            n = 0
            while i < len(ok) and (not batch or n + ok[i].events <= self.max_batch_events):
                batch.append(ok[i])
                n += ok[i].events
                i += 1
            self._commit_answerable(batch)
        self.last_progress = time.monotonic()
        self._note_health(units)
        self._answer(units)

    def _run(self) -> None:
        source = self._checked if self.refused is not None else self._queue
        while True:
            with self._cond:
                while not source and not (self._stopping and (self._checker_done or self.refused is None)):
                    self._cond.wait()
                if not source:
                    return  # stopping, nothing left
                batch: list[_Unit] = []
                n = 0
                while source and (not batch or n + source[0].events <= self.max_batch_events):
                    u = source.popleft()
                    batch.append(u)
                    n += u.events
            self._commit_answerable(batch)
            self.last_progress = time.monotonic()
            self._note_health(batch)
            if not self._answer(batch):
                return

    def _note_health(self, units: list[_Unit]) -> None:
        """Remember whether the database took the last commit (for /readyz)."""
        if any(u.result is not None for u in units):
            self.failing = None
        else:
            for u in units:
                if u.error is not None and not isinstance(u.error, (UserError, CredentialRefused)):
                    self.failing = f"the last append failed: {type(u.error).__name__}"

    def _answer(self, units: list[_Unit]) -> bool:
        if self._answer_hook is not None:
            self._answer_hook(units)
            return True
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(_resolve, units)
            return True
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return False

    def _commit_answerable(self, batch: list[_Unit]) -> None:
        """``_commit``, then whatever escaped it becomes the error of each unanswered request.
        With ``record_conflicts``, each wrong expected version is recorded before it is answered."""
        try:
            self._commit(batch)
        except BaseException as e:  # never leave a request unanswered
            for u in batch:
                if u.result is None and u.error is None:
                    u.error = e
        if self.record_conflicts:
            for u in batch:
                if isinstance(u.error, WrongExpectedVersion):
                    events = next((ev for s, ev, exp in u.items if s == u.error.stream_id), u.items[0][1])
                    self.store.record_conflict(u.error, events)

    def _commit(self, batch: list[_Unit]) -> None:
        if len(batch) == 1:
            try:
                self._commit_together(batch)
            except EventStoreError as e:
                batch[0].error = e
            return
        try:
            self._commit_together(batch)
            return
        except UserError as e:  # one request's fault (wrong expected version, bad event): split the batch
            split_free = isinstance(e, WrongExpectedVersion)
        except EventStoreError as e:  # the database failed: every request in the batch gets the error
            for u in batch:
                u.error = e
            return
        free = [u for u in batch if all(exp is None for _, _, exp in u.items)] if split_free else []
        if len(free) > 1:
            try:
                self._commit_together(free)
            except UserError:
                pass  # an invalid event among them: each is tried alone below
            except EventStoreError as e:
                for u in free:
                    u.error = e
        for u in batch:
            if u.result is None and u.error is None:
                try:
                    self._commit_together([u])
                except EventStoreError as e:
                    u.error = e

    def _commit_together(self, units: list[_Unit]) -> None:
        flat: list[Any] = [item for u in units for item in u.items]
        results = self.store.append_many(flat)
        i = 0
        for u in units:
            u.result = results[i : i + len(u.items)]
            i += len(u.items)
        if self.on_commit is not None and results:
            self.on_commit(sum(len(r) for r in results), results[-1][-1].position)


def _resolve(batch: list[_Unit]) -> None:
    for u in batch:
        if u.future is None or u.future.done():
            continue
        if u.error is not None:
            u.future.set_exception(u.error)
        else:
            u.future.set_result(u.result)  # type: ignore[arg-type]


# -- process mode -------------------------------------------------------------------
class _Child:
    """The event loop's side of the writer process: a socket pair, and the requests it holds.

    Everything here runs on the event loop thread: ``send`` batches the requests of one
    loop iteration into one message, ``_answered`` resolves the answers. Messages are
    framed as ``multiprocessing.connection.Connection`` frames them (a 4-byte big-endian
    length, then the pickle), which the child reads and writes with a blocking Connection.
    """

    def __init__(self, writer: Writer, loop: asyncio.AbstractEventLoop):
        self.writer = writer
        self.loop = loop
        self.waiting: dict[int, _Unit] = {}
        self.outbox: list[tuple[int, Sequence[Item], str | None]] = []
        self.keys = 0
        self.stopped = threading.Event()
        self.transport: asyncio.Transport | None = None
        self.spawned = 0.0
        self._spawn()

    def _spawn(self) -> None:
        """Start ``python -c _CHILD FD`` with one end of a socket pair.

        A plain subprocess rather than multiprocessing's spawn, which would import the
        caller's ``__main__`` again; the store's URL (it may hold a password) travels in
        the first message, not on the command line where ``ps`` shows it.
        """
        store = self.writer.store
        setup = pickle.dumps(
            (
                store.backend.url,
                store.backend.durability,
                store.backend.options,
                store.catalogue,  # the same vocabulary and size limit as the parent validates with
                store.mapper.max_event_bytes,
                self.writer.max_batch_events,
                self.writer.refused is not None,
                self.writer.record_conflicts,
            )
        )
        ours, theirs = socket.socketpair()
        self.spawned = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the terminal's group is the parent's to handle
        )
        theirs.close()
        ours.sendall(_frame(setup))
        self.loop.create_task(self._connect(ours))

    async def _connect(self, sock: socket.socket) -> None:
        transport, _ = await self.loop.connect_accepted_socket(lambda: _Frames(self), sock)
        self.transport = transport
        self._flush()

    def send(self, unit: _Unit) -> None:
        self.keys += 1
        unit.key = self.keys
        self.waiting[unit.key] = unit
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append((unit.key, unit.items, unit.principal))

    def _flush(self) -> None:
        if not self.outbox or self.transport is None:
            return  # nothing to send, or the child is starting: ``_connect`` flushes
        out, self.outbox = self.outbox, []
        self.transport.write(_frame(_encode_requests(out)))

    def _answered(self, message: bytes) -> None:
        batch = _answers_decoder.decode(message)
        self.writer.failing = batch.failing
        self.writer.last_progress = time.monotonic()
        for answer in batch.answers:
            unit = self.waiting.pop(answer.key, None)
            if unit is None or unit.future is None or unit.future.done():
                continue
            if answer.error is not None:
                unit.future.set_exception(pickle.loads(answer.error))
            else:
                unit.future.set_result(answer.result)  # type: ignore[arg-type]
        if batch.events and self.writer.on_commit is not None:
            self.writer.on_commit(batch.events, batch.head)

    def _lost(self) -> None:
        """The child exited (or its socket broke): answer what it held, start another unless stopping."""
        self.transport = None
        code = self.process.poll()
        held = list(self.waiting.values())
        self.waiting.clear()
        self.outbox = []
        if self.stopped.is_set():
            error: EventStoreError = ShuttingDown("the service is shutting down")
        else:
            error = WriterExited(
                f"the writer process exited{'' if code is None else f' (code {code})'} before answering; "
                "the outcome of this append is unknown: retry it with the same event ids or Idempotency-Key"
            )
            self.writer.failing = "the writer process exited; a new one is starting"
        for unit in held:
            if unit.future is not None and not unit.future.done():
                unit.future.set_exception(error)
        if self.stopped.is_set():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.writer._child_done.set()
            return
        log.error("the writer process exited (code %s); starting a new one", code)
        # a child that cannot start (the database is gone) is retried once a second, not in a loop
        self.loop.call_later(max(0.0, 1.0 - (time.monotonic() - self.spawned)), self._respawn)

    def _respawn(self) -> None:
        if not self.stopped.is_set():
            self._spawn()

    def stop(self) -> None:
        """From any thread: the child commits what it holds, answers, and exits."""
        self.stopped.set()

        def close() -> None:
            self._flush()
            if self.transport is not None:
                self.transport.write(_frame(_encode_requests(None)))
            else:
                self.writer._child_done.set()

        try:
            self.loop.call_soon_threadsafe(close)
        except RuntimeError:  # the loop is closed
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
            return
        self.writer._child_done.wait(timeout=60)


class _Answer(msgspec.Struct, array_like=True):
    key: int
    result: list[list[Receipt]] | None
    error: bytes | None  # the pickled exception (every EventStoreError pickles)


class _Answers(msgspec.Struct, array_like=True):
    """One message from the writer process: answers, and what the commit did."""

    answers: list[_Answer]
    events: int
    head: int
    failing: str | None


_answers_decoder = msgspec.msgpack.Decoder(_Answers)
_Requests = list[tuple[int, list[tuple[str, list[NewEvent], int | None]], str | None]]
_requests_decoder = msgspec.msgpack.Decoder(_Requests | None)


def _encode_requests(requests: list[tuple[int, Sequence[Item], str | None]] | None) -> bytes:
    """Requests for the writer process (None: stop), as MessagePack: it carries NewEvent Structs
    several times faster than pickle, and every value of a validated payload fits it (integers
    beyond 64 bits are refused by the store before a request is queued)."""
    return msgspec.msgpack.encode(requests)


def _frame(payload: bytes) -> bytes:
    """One message as ``multiprocessing.connection.Connection.send_bytes`` frames it."""
    n = len(payload)
    head = struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)
    return head + payload


class _Frames(asyncio.Protocol):
    """Reads the child's framed answers off the socket, on the event loop."""

    def __init__(self, child: _Child):
        self.child = child
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            (n,) = struct.unpack_from("!i", self.buffer)
            start = 4
            if n == -1:
                if len(self.buffer) < 12:
                    return
                (n,) = struct.unpack_from("!Q", self.buffer, 4)
                start = 12
            if len(self.buffer) < start + n:
                return
            message = bytes(self.buffer[start : start + n])
            del self.buffer[: start + n]
            self.child._answered(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.child._lost()


def _child_main(fd: int) -> None:
    """The writer process: read requests from the socket, commit them in batches, answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from .credentials import Credentials

    conn = Connection(fd)
    url, durability, options, catalogue, max_event_bytes, max_batch_events, check, conflicts = pickle.loads(
        conn.recv_bytes()
    )

    store = EventStore.open(
        url, durability=durability, migrate=False, catalogue=catalogue, max_event_bytes=max_event_bytes, **options
    )
    writer: Writer

    def answer(units: list[_Unit]) -> None:
        out = []
        events = head = 0
        for u in units:
            error = None
            if u.error is not None:
                try:
                    error = pickle.dumps(u.error, pickle.HIGHEST_PROTOCOL)
                except Exception:
                    error = pickle.dumps(EventStoreError(f"the append failed: {type(u.error).__name__}"))
            out.append(_Answer(u.key, u.result, error))
            if u.result:
                events += sum(len(r) for r in u.result)
                head = max(head, u.result[-1][-1].position)
        conn.send_bytes(msgspec.msgpack.encode(_Answers(out, events, head, writer.failing)))

    writer = Writer(
        store,
        mode="queue",
        max_batch_events=max_batch_events,
        max_pending=1 << 30,
        refused=Credentials(store).refused if check else None,
        answer=answer,
        record_conflicts=conflicts,
    )
    try:
        while True:
            try:
                message = conn.recv_bytes()  # wait for a burst, then take every burst already sent
                units: list[_Unit] = []
                stop = False
                while True:
                    batch = _requests_decoder.decode(message)
                    if batch is None:
                        stop = True
                        break
                    units += [_Unit(items, principal, None, key) for key, items, principal in batch]
                    if not conn.poll(0):
                        break
                    message = conn.recv_bytes()
            except (EOFError, OSError):
                break  # the parent is gone: nothing more will come (what was received is answered)
            if units:
                writer.process(units)
            if stop:
                break
    finally:
        store.close()
        conn.close()


_CHILD = "import sys; from eventstore.service.writer import _child_main; _child_main(int(sys.argv[1]))"
