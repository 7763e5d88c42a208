"""``Idempotency-Key``: a retried request gets the first answer and writes nothing.

Keys are scoped to the credential (two credentials may use the same key). The first
answer (status and body) to a key is kept with the SHA-256 of the request (method,
path, body): a retry with the same request gets that answer again; the same key with
a different request is refused (422 ``idempotency_key_reused``).

Where answers live:

- while a request with a key is in flight, a retry with the same key waits for it
  (one process: an in-memory table of futures);
- once answered, the answer is held in memory and written to ``idempotency_keys`` by a
  background thread within ``flush_interval`` (batched: one transaction per interval,
  not one disk sync per request, which would halve the append rate);
- rows are kept ``retention`` seconds (default 24 h) and then deleted.

If the process dies after the events are durable and before the answer's row is (a window
of at most ``flush_interval``), the answer is lost but the events still count once: a
request's events without ids get ids derived from the credential, the key and the request
(``Service._events``), and ids are checked inside the append's transaction, so the retry
writes nothing and gets the first receipts from the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import OrderedDict

from ..store import EventStore

log = logging.getLogger("eventstore.service")

MAX_KEY_LENGTH = 200
STORED_STATUSES = frozenset({200, 400, 403, 409, 413})
"""Answers that a retry must see again; 401, 422, 429 and 5xx are not kept (retrying may succeed)."""


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class Answer:
    __slots__ = ("request_hash", "status", "body", "created_at")

    def __init__(self, request_hash: str, status: int, body: bytes, created_at: float):
        self.request_hash = request_hash
        self.status = status
        self.body = body
        self.created_at = created_at


class IdempotencyKeys:
    def __init__(
        self, store: EventStore, *, retention: float = 86400.0, flush_interval: float = 0.05, memory_max: int = 100_000
    ):
        self.store = store
        self.retention = retention
        self.flush_interval = flush_interval
        self.memory_max = memory_max
        self._recent: OrderedDict[tuple[str, str], Answer] = OrderedDict()  # answered, maybe not yet stored
        self._unflushed: list[tuple[str, str, Answer]] = []
        self._inflight: dict[tuple[str, str], asyncio.Future[Answer | None]] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # flush() returns only once every answer handed over before is stored
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self.purge()
        self._thread = threading.Thread(target=self._run, name="eventstore-idempotency", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        last_purge = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
                if time.monotonic() - last_purge > 600:
                    last_purge = time.monotonic()
                    self.purge()
            except Exception as e:  # the database is down: keep the answers and try again
                log.warning("storing idempotency keys failed, will retry: %s", e)
                time.sleep(0.5)

    def flush(self) -> None:
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            todo, self._unflushed = self._unflushed, []
        if not todo:
            return
        try:
            with self.store.backend.transaction() as tx:
                for principal, key, a in todo:
                    # a key answered twice cannot happen in one process; across processes the first row wins
                    if not tx.execute(
                        "SELECT 1 FROM idempotency_keys WHERE principal = ? AND key = ?", (principal, key)
                    ):
                        tx.execute(
                            "INSERT INTO idempotency_keys VALUES (?,?,?,?,?,?)",
                            (principal, key, a.request_hash, a.status, a.body.decode(), a.created_at),
                        )
        except BaseException:
            with self._lock:
                self._unflushed[:0] = todo
            raise
        with self._lock:
            while len(self._recent) > self.memory_max:
                self._recent.popitem(last=False)

    def purge(self) -> None:
        with self.store.backend.transaction() as tx:
            tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (time.time() - self.retention,))

    # -- per request ----------------------------------------------------------------
    def lookup(self, principal: str, key: str) -> Answer | None:
        """The stored answer for this key, if any (memory first, then the table)."""
        with self._lock:
            a = self._recent.get((principal, key))
        if a is not None:
            return a
        rows = self.store.backend.query(
            "SELECT request_hash, status, body, created_at FROM idempotency_keys WHERE principal = ? AND key = ?",
            (principal, key),
        )
        if not rows:
            return None
        h, status, body, created = rows[0]
        if created < time.time() - self.retention:
            return None
        return Answer(h, int(status), body.encode(), created)

    async def begin(self, principal: str, key: str) -> Answer | None:
        """Wait for an in-flight request with the same key, then return any stored answer.

        Returns None when this request is the first: the caller must call ``finish``.
        """
        k = (principal, key)
        while True:
            fut = self._inflight.get(k)
            if fut is None:
                break
            await asyncio.shield(fut)
        a = self.lookup(principal, key)
        if a is None:
            self._inflight[k] = asyncio.get_running_loop().create_future()
        return a

    def finish(self, principal: str, key: str, rhash: str, status: int, body: bytes) -> None:
        k = (principal, key)
        if status in STORED_STATUSES:
            a = Answer(rhash, status, body, time.time())
            with self._lock:
                self._recent[k] = a
                self._recent.move_to_end(k)
                self._unflushed.append((principal, key, a))
        fut = self._inflight.pop(k, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
