"""The HTTP service: Starlette routes over one EventStore (HTTP API v1, docs/api.md).

One process owns the writer (eventstore/service/writer.py): every connection's appends
are queued and committed together. Credentials are checked on every request
(credentials.py); ``metadata.principal`` of every appended event is the credential's
name. Blocking reads run in Starlette's thread pool; the credential lookup and the
idempotency lookup are single indexed reads done on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import notes, retention
from ..errors import EventStoreError, InvalidEvent, UserError
from ..records import NewEvent, Receipt
from ..store import EventStore
from . import api, openapi, sse
from .api import ApiError
from .config import ServiceConfig
from .credentials import CREDENTIALS_STREAM, Credentials, Principal
from .idempotency import MAX_KEY_LENGTH, IdempotencyKeys, request_hash
from .metrics import Metrics
from .writer import CredentialRefused, Overloaded, ShuttingDown, Writer

log = logging.getLogger("eventstore.service")
JSON = "application/json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ROLE_TEXT = {
    "append": "appender (matching streams) or admin",
    "read_stream": "reader, admin, or an appender whose patterns match the stream",
    "read_all": "reader or admin",
    "audit": "auditor or admin",
}


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(value), status, headers=headers, media_type=JSON)


def _error(e: ApiError) -> Response:
    return Response(e.body(), e.status, headers=e.headers, media_type=JSON)


def _int_param(request: Request, name: str, default: int | None, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, "invalid_request", f"query parameter {name!r} must be an integer, not {raw!r}", f"?{name}"
        ) from None
    if value < minimum:
        raise ApiError(400, "invalid_request", f"query parameter {name!r} must be >= {minimum}", f"?{name}")
    return value


class Service:
    """Everything one ``serve`` process holds: store, credentials, writer, metrics."""

    def __init__(
        self,
        store: EventStore,
        config: ServiceConfig | None = None,
        *,
        on_start: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ):
        self.store = store
        self.config = config or ServiceConfig()
        self.credentials = Credentials(store)
        self.idempotency = IdempotencyKeys(store, retention=self.config.idempotency_retention)
        self.notifier = sse.Notifier()
        self.stopping = asyncio.Event()
        mode = self.config.writer
        if mode == "process" and getattr(store.backend, "memory", False):
            mode = "queue"  # another process cannot open this process's memory database
        self.writer = Writer(
            store,
            mode=mode,
            max_pending=self.config.max_pending,
            max_batch_events=self.config.max_batch_events,
            on_commit=self._committed,
            refused=self.credentials.refused,
            record_conflicts=self.config.record_conflicts,
        )
        self.metrics = Metrics(lambda: float(self.writer.pending), self._projection_lags)
        self.signer: notes.Signer | None = None
        if self.config.signing_key:
            with open(self.config.signing_key) as f:
                self.signer = notes.Signer.from_text(f.read().strip())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._remote_db = store.backend.dialect != "sqlite"
        self._on_start = on_start
        self._on_stop = on_stop
        self._started = False
        routes = [
            Route("/healthz", self.healthz, methods=["GET"], name="healthz"),
            Route("/readyz", self.readyz, methods=["GET"], name="readyz"),
            Route("/metrics", self.metrics_endpoint, methods=["GET"], name="metrics"),
            Route("/v1/openapi.json", self.openapi, methods=["GET"], name="openapi"),
            Route("/v1/streams/{stream_id:path}/events", self.append_stream, methods=["POST"], name="append"),
            Route("/v1/streams/{stream_id:path}/events", self.read_stream, methods=["GET"], name="read_stream"),
            Route("/v1/streams/{stream_id:path}/version", self.stream_version, methods=["GET"], name="stream_version"),
            Route("/v1/append", self.append_multi, methods=["POST"], name="append_multi"),
            Route("/v1/events/subscribe", self.subscribe, methods=["GET"], name="subscribe"),
            Route("/v1/events", self.read_all, methods=["GET"], name="read_all"),
            Route("/v1/head", self.head, methods=["GET"], name="head"),
            Route("/v1/receipts/verify", self.verify_receipt, methods=["POST"], name="verify_receipt"),
            Route("/v1/checkpoints/latest", self.latest_checkpoint, methods=["GET"], name="checkpoint_latest"),
            Route("/v1/checkpoints", self.make_checkpoint, methods=["POST"], name="checkpoint_create"),
            Route("/v1/proofs/inclusion", self.inclusion_proof, methods=["GET"], name="proof_inclusion"),
            Route("/v1/proofs/consistency", self.consistency_proof, methods=["GET"], name="proof_consistency"),
            Route("/v1/tlog-proof/{position:int}", self.tlog_proof, methods=["GET"], name="tlog_proof"),
        ]
        # A bare Router, not a Starlette application: _Access does what the application's two
        # middlewares (ServerErrorMiddleware, ExceptionMiddleware) would, once per request.
        self.router = Router(routes=routes, lifespan=self._lifespan)
        self.app: ASGIApp = _Access(self.router, self)

    # -- lifecycle ------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            await run_in_threadpool(self.stop)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.notifier = sse.Notifier()
        self.notifier.head = self.store.head()[0]
        self.writer.start(self._loop)
        self.idempotency.start()
        if self._on_start is not None:
            self._on_start()

    def begin_shutdown(self) -> None:
        """Called on SIGTERM (any thread): subscriptions end within a second instead of holding the stop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.stopping.set)

    def stop(self) -> None:
        """Commit and answer what is queued, store the idempotency answers, stop helpers."""
        if not self._started:
            return
        self._started = False
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.stopping.set)
        self.writer.stop()
        self.idempotency.stop()
        if self._on_stop is not None:
            self._on_stop()

    def _committed(self, events: int, head: int) -> None:
        """Called by the writer after each commit (writer thread)."""
        self.metrics.commit_events.observe(events)
        self.metrics.events.inc(events)
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.notifier.bump, head)

    def _projection_lags(self) -> dict[str, int]:
        head = self.store.head()[0]
        rows = self.store.backend.query("SELECT name, position FROM projection_state WHERE active = 1")
        return {name: max(0, head - int(pos)) for name, pos in rows}

    # -- plumbing -------------------------------------------------------------------
    def authenticate(self, request: Request, *, for_append: bool = False) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            self.metrics.refused.labels("missing").inc()
            raise ApiError(
                401,
                "unauthorized",
                "no credential: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            self.metrics.refused.labels("malformed").inc()
            raise ApiError(
                401,
                "unauthorized",
                "the Authorization header must be 'Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            if for_append:  # cached; the writer checks the credential again at commit
                principal, why = self.credentials.authenticate_for_append(secret.strip())
            else:
                principal, why = self.credentials.authenticate(secret.strip())
        except EventStoreError as e:
            raise api.store_error(e) from None
        except Exception as e:
            raise ApiError(
                503,
                "unavailable",
                f"cannot check the credential: {type(e).__name__}",
                headers={"Retry-After": str(self.config.retry_after)},
            ) from None
        if principal is None:
            self.metrics.refused.labels(why).inc()
            message = {"revoked": "the credential was revoked", "expired": "the credential has expired"}.get(
                why, "the credential is not valid"
            )
            raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
        request.scope["eventstore.principal"] = principal.name
        return principal

    async def _auth(self, request: Request) -> Principal:
        """``authenticate`` for reads: one indexed query per request. On PostgreSQL it runs in the
        thread pool so that its round trip does not stall the event loop (and the appends on it)."""
        if self._remote_db:
            return await run_in_threadpool(self.authenticate, request)
        return self.authenticate(request)

    def _forbid(self, principal: Principal, what: str, target: str | None = None) -> ApiError:
        self.metrics.refused.labels("forbidden").inc()
        on = f" on stream {target!r}" if target is not None else ""
        return ApiError(
            403,
            "forbidden",
            f"credential {principal.name!r} ({principal.role}) may not {what}{on}: that needs {_ROLE_TEXT[what]}",
        )

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        cl = request.headers.get("content-length")
        if cl is not None:
            if not cl.isdigit():
                raise ApiError(400, "invalid_request", "bad Content-Length header")
            if int(cl) > limit:
                raise ApiError(413, "payload_too_large", f"the body is {cl} bytes; the limit is {limit} bytes")
        chunks = []
        n = 0
        try:
            async with asyncio.timeout(self.config.body_timeout):
                async for chunk in request.stream():
                    n += len(chunk)
                    if n > limit:
                        raise ApiError(413, "payload_too_large", f"the body is over the limit of {limit} bytes")
                    chunks.append(chunk)
        except ClientDisconnect:
            raise ApiError(
                400, "client_disconnected", "the client closed the connection before sending its body"
            ) from None
        except TimeoutError:
            raise ApiError(
                408, "request_timeout", f"the body was not received within {self.config.body_timeout:g} seconds"
            ) from None
        return b"".join(chunks)

    async def _idempotent(
        self,
        request: Request,
        principal: Principal,
        body: bytes,
        handler: Callable[[str | None], Awaitable[Response]],
    ) -> Response:
        """Answer a request with an Idempotency-Key once; ``handler(seed)`` gets the seed of the
        event ids the request's events are given when they carry none (``_events``)."""
        key = request.headers.get("idempotency-key")
        if key is None:
            return await handler(None)
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise ApiError(400, "invalid_request", f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters")
        rhash = request_hash(request.method, request.url.path, body)
        try:
            answer = await self.idempotency.begin(principal.name, key)
        except EventStoreError as e:
            raise api.store_error(e) from None
        if answer is not None:
            if answer.request_hash != rhash:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request; use a new key",
                )
            return Response(answer.body, answer.status, media_type=JSON, headers={"Idempotent-Replayed": "true"})
        status, out = 0, b""
        try:
            try:
                response = await handler(f"{principal.name}\0{key}\0{rhash}")
            except ApiError as e:
                status, out = e.status, e.body()
                raise
            status, out = response.status_code, bytes(response.body)
            return response
        finally:
            self.idempotency.finish(principal.name, key, rhash, status, out)

    def _events(
        self, principal: Principal, events: list[api.EventIn], path: str, seed: str | None = None
    ) -> list[NewEvent]:
        """Check and convert one stream's events (no side effects; 400/413 on bad input).

        With an Idempotency-Key (``seed``: credential, key and request hash) and no event ids,
        each event is given the id ``idem-`` + the first 32 hex digits of SHA-256(seed, NUL,
        path, NUL, index): a retry of the same request (same key, same body) after the
        service lost the stored answer (a crash within its flush interval) carries the same
        ids, so the store writes nothing again and returns the first receipts
        (docs/api.md, "Retries")."""
        if not events:
            raise ApiError(400, "invalid_request", "events must not be empty", path)
        for i, ev in enumerate(events):
            if retention.is_system_type(ev.type):
                raise ApiError(
                    403,
                    "forbidden",
                    f"event type {ev.type!r} is reserved for the log's own records (written by "
                    "'eventstore token', 'hold', 'retention', 'prune', 'erase', 'archive', 'restore'), "
                    "not by an append",
                    f"{path}[{i}].type",
                )
        new = api.to_new_events(events, principal.name, path)
        if seed is not None and all(e.id is None for e in new):
            new = [
                msgspec.structs.replace(
                    e, id="idem-" + hashlib.sha256(f"{seed}\0{path}\0{i}".encode()).hexdigest()[:32]
                )
                for i, e in enumerate(new)
            ]
        # Validate here (not in the writer) so that a bad request is refused at once and never
        # pushes a batch into the writer's slow path. Events with a subject are checked without
        # it: encrypting would create the subject's key, a write (the writer does that).
        check = [
            NewEvent(type=e.type, data=e.data, metadata=e.metadata, id=e.id) if e.subject is not None else e
            for e in new
        ]
        try:
            self.store.prepare(check)
        except InvalidEvent as e:
            index = None
            for i, one in enumerate(check):
                try:
                    self.store.prepare([one])
                except InvalidEvent:
                    index = i
                    break
            raise api.event_error(e, path, index) from None
        for i, one in enumerate(new):
            if one.subject is not None:
                if not one.subject:
                    raise ApiError(400, "invalid_event", "subject must not be empty", f"{path}[{i}].subject")
                try:
                    self.store.mapper.personal_fields(one, one.type, one.data)
                except InvalidEvent as e:
                    raise api.event_error(e, path, i) from None
        return new

    async def _submit(
        self, items: list[tuple[str, Sequence[NewEvent], int | None]], principal: Principal
    ) -> list[list[Receipt]]:
        started = time.perf_counter()
        try:
            result = await self.writer.submit(items, principal.name)
        except CredentialRefused as e:
            self.credentials.forget(e.name)
            self.metrics.refused.labels(e.reason).inc()
            raise ApiError(401, "unauthorized", str(e), headers={"WWW-Authenticate": "Bearer"}) from None
        except (Overloaded, ShuttingDown) as e:
            code = "overloaded" if isinstance(e, Overloaded) else "shutting_down"
            raise ApiError(503, code, str(e), headers={"Retry-After": str(self.config.retry_after)}) from None
        except EventStoreError as e:
            err = api.store_error(e)
            if err.code == "wrong_expected_version" and len(items) > 1:
                idx = next(
                    (
                        i
                        for i, (s, _, exp) in enumerate(items)
                        if s == err.extra["stream_id"] and exp == err.extra["expected"]
                    ),
                    None,
                )
                err.path = f"$.appends[{idx}].expected_version" if idx is not None else None
            elif err.code == "wrong_expected_version":
                err.path = "$.expected_version"
            raise err from None
        self.metrics.append_latency.observe(time.perf_counter() - started)
        return result

    # -- appends --------------------------------------------------------------------
    async def append_stream(self, request: Request) -> Response:
        principal = self.authenticate(request, for_append=True)
        stream_id = request.path_params["stream_id"]
        if not principal.may_append(stream_id):
            if stream_id == CREDENTIALS_STREAM:
                raise ApiError(403, "forbidden", "stream 'credentials' is written only by 'eventstore token'")
            raise self._forbid(principal, "append", stream_id)
        body = await self._body(request)

        async def handle(seed: str | None) -> Response:
            try:
                req = _append_decoder.decode(body)
            except msgspec.DecodeError as e:
                raise api.decode_error(e) from None
            if len(req.events) > self.config.max_events_per_request:
                raise ApiError(
                    413,
                    "too_many_events",
                    f"{len(req.events)} events in one request; the limit is {self.config.max_events_per_request}",
                    "$.events",
                )
            if req.expected_version is not None and req.expected_version < 0:
                raise ApiError(400, "invalid_request", "expected_version must be null or >= 0", "$.expected_version")
            events = self._events(principal, req.events, "$.events", seed)
            receipts = (await self._submit([(stream_id, events, req.expected_version)], principal))[0]
            return Response(_encode_receipts(receipts), media_type=JSON)

        return await self._idempotent(request, principal, body, handle)

    async def append_multi(self, request: Request) -> Response:
        principal = self.authenticate(request, for_append=True)
        body = await self._body(request)

        async def handle(seed: str | None) -> Response:
            try:
                req = _multi_decoder.decode(body)
            except msgspec.DecodeError as e:
                raise api.decode_error(e) from None
            if not req.appends:
                raise ApiError(400, "invalid_request", "appends must not be empty", "$.appends")
            total = sum(len(a.events) for a in req.appends)
            if total > self.config.max_events_per_request:
                raise ApiError(
                    413,
                    "too_many_events",
                    f"{total} events in one request; the limit is {self.config.max_events_per_request}",
                    "$.appends",
                )
            items: list[tuple[str, Sequence[NewEvent], int | None]] = []
            for i, a in enumerate(req.appends):
                if not principal.may_append(a.stream_id):
                    raise self._forbid(principal, "append", a.stream_id)
                if a.expected_version is not None and a.expected_version < 0:
                    raise ApiError(
                        400,
                        "invalid_request",
                        "expected_version must be null or >= 0",
                        f"$.appends[{i}].expected_version",
                    )
                if not a.stream_id:
                    raise ApiError(400, "invalid_request", "stream_id must not be empty", f"$.appends[{i}].stream_id")
                items.append(
                    (
                        a.stream_id,
                        self._events(principal, a.events, f"$.appends[{i}].events", seed),
                        a.expected_version,
                    )
                )
            results = await self._submit(items, principal)
            return _json({"receipts": results})

        return await self._idempotent(request, principal, body, handle)

    # -- reads ----------------------------------------------------------------------
    async def read_stream(self, request: Request) -> Response:
        principal = await self._auth(request)
        stream_id = request.path_params["stream_id"]
        if not principal.may_read_stream(stream_id):
            raise self._forbid(principal, "read_stream", stream_id)
        start = _int_param(request, "from_version", 1, 1) or 1
        limit = _int_param(request, "limit", self.config.max_page, 1) or 1
        limit = min(limit, self.config.max_page)

        def page() -> list[Any]:
            return list(itertools.islice(self.store.read_stream(stream_id, start, batch_size=limit + 1), limit + 1))

        events = await run_in_threadpool(page)
        nxt = events[limit].version if len(events) > limit else None
        return Response(_encode_page(events[:limit], nxt), media_type=JSON)

    async def read_all(self, request: Request) -> Response:
        principal = await self._auth(request)
        if not principal.may_read_all():
            raise self._forbid(principal, "read_all")
        start = _int_param(request, "from_position", 1, 1) or 1
        limit = _int_param(request, "limit", self.config.max_page, 1) or 1
        limit = min(limit, self.config.max_page)

        def page() -> list[Any]:
            return list(itertools.islice(self.store.read_all(start, batch_size=limit + 1), limit + 1))

        events = await run_in_threadpool(page)
        nxt = events[limit].position if len(events) > limit else None
        return Response(_encode_page(events[:limit], nxt), media_type=JSON)

    async def stream_version(self, request: Request) -> Response:
        principal = await self._auth(request)
        stream_id = request.path_params["stream_id"]
        if not principal.may_read_stream(stream_id):
            raise self._forbid(principal, "read_stream", stream_id)
        version = await run_in_threadpool(self.store.stream_version, stream_id)
        return _json({"stream_id": stream_id, "version": version})

    async def head(self, request: Request) -> Response:
        principal = await self._auth(request)
        if not (principal.may_read_all() or principal.may_audit()):
            raise self._forbid(principal, "read_all")
        position, h = await run_in_threadpool(self.store.head)
        return _json({"position": position, "hash": h})

    async def subscribe(self, request: Request) -> Response:
        principal = await self._auth(request)
        if not principal.may_read_all():
            raise self._forbid(principal, "read_all")
        start = _int_param(request, "from_position", 1, 1) or 1
        last = request.headers.get("last-event-id")
        if last:
            if not last.isdigit():
                raise ApiError(400, "invalid_request", "Last-Event-ID must be a position (an integer)")
            start = int(last) + 1

        def still_allowed() -> str | None:
            why = self.credentials.refused({principal.name}).get(principal.name)
            return None if why is None else f"the credential is {why}"

        gen = sse.stream(
            self.store,
            self.notifier,
            start,
            heartbeat=self.config.heartbeat,
            poll=self.config.poll,
            stopping=self.stopping,
            still_allowed=still_allowed,
        )
        return StreamingResponse(
            gen, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    # -- audit ----------------------------------------------------------------------
    async def verify_receipt(self, request: Request) -> Response:
        principal = await self._auth(request)
        body = await self._body(request)
        try:
            receipt = _receipt_decoder.decode(body)
        except msgspec.DecodeError as e:
            raise api.decode_error(e) from None
        if not (principal.may_audit() or principal.may_read_stream(receipt.stream_id)):
            raise self._forbid(principal, "audit")
        report = await run_in_threadpool(self.store.verify_receipt, receipt)
        return _json(report)

    async def _audit(self, request: Request) -> None:
        principal = await self._auth(request)
        if not principal.may_audit():
            raise self._forbid(principal, "audit")

    def _latest(self, origin: str | None) -> tuple[str, int, bytes, str] | None:
        cps = self.store.checkpoints(origin)
        return cps[-1] if cps else None

    async def latest_checkpoint(self, request: Request) -> Response:
        await self._audit(request)
        cp = await run_in_threadpool(self._latest, request.query_params.get("origin"))
        if cp is None:
            raise ApiError(404, "not_found", "no checkpoint has been signed yet ('eventstore checkpoint')")
        return Response(cp[3], media_type="text/plain; charset=utf-8")

    async def make_checkpoint(self, request: Request) -> Response:
        await self._audit(request)
        if self.signer is None:
            raise ApiError(404, "not_found", "this service signs no checkpoints (start it with --signing-key)")
        signed = await run_in_threadpool(self.store.checkpoint, self.signer)
        return Response(signed.format(), media_type="text/plain; charset=utf-8")

    def _tree(self, size: int | None) -> tuple[int, str, bytes | None]:
        """(tree size, origin, root): a stored checkpoint's when one has this size (or, by default, the latest)."""
        cps = self.store.checkpoints()
        if size is None:
            if cps:
                return cps[-1][1], cps[-1][0], cps[-1][2]
            return self.store.head()[0], "", None
        for origin, n, root, _ in reversed(cps):
            if n == size:
                return n, origin, root
        return size, "", None

    async def inclusion_proof(self, request: Request) -> Response:
        await self._audit(request)
        position = _int_param(request, "position", None, 1)
        if position is None:
            raise ApiError(400, "invalid_request", "query parameter 'position' is required", "?position")
        tree_size = _int_param(request, "tree_size", None, 1)

        def prove() -> Any:
            size, origin, root = self._tree(tree_size)
            return self.store.prove_inclusion(position, size, origin=origin, root=root)

        return _json(await self._call(prove))

    async def consistency_proof(self, request: Request) -> Response:
        await self._audit(request)
        old = _int_param(request, "old", None, 1)
        if old is None:
            raise ApiError(400, "invalid_request", "query parameter 'old' is required", "?old")
        new = _int_param(request, "new", None, 1)

        def prove() -> Any:
            old_size, origin, old_root = self._tree(old)
            new_size, new_origin, new_root = self._tree(new)
            return self.store.prove_consistency(
                old_size, new_size, origin=origin or new_origin, old_root=old_root, new_root=new_root
            )

        return _json(await self._call(prove))

    async def tlog_proof(self, request: Request) -> Response:
        await self._audit(request)
        position = request.path_params["position"]

        def prove() -> str:
            cps = [c for c in self.store.checkpoints() if c[1] >= position]
            if not cps:
                raise ApiError(404, "not_found", f"no signed checkpoint covers position {position} yet")
            note = notes.Note.parse(cps[-1][3])
            return self.store.tlog_proof(position, notes.SignedCheckpoint(notes.Checkpoint.parse(note.text), note))

        return Response(await self._call(prove), media_type="text/plain; charset=utf-8")

    async def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return await run_in_threadpool(fn)
        except ApiError:
            raise
        except UserError as e:
            raise ApiError(400, "invalid_request", str(e)) from None
        except EventStoreError as e:
            raise api.store_error(e) from None

    # -- operations -----------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        return _json({"ok": True})

    async def readyz(self, request: Request) -> Response:
        def check() -> str | None:
            try:
                self.store.head()
                if self.store.migrator().plan():
                    return "migrations are pending: run 'eventstore migrate up'"
            except Exception as e:
                return f"the database is not reachable: {type(e).__name__}"
            if self.writer.stuck:
                return "the writer made no progress for 30 seconds"
            if self.writer.failing:
                return self.writer.failing
            if self.stopping.is_set():
                return "shutting down"
            return None

        problem = await run_in_threadpool(check)
        if problem is not None:
            return _error(ApiError(503, "not_ready", problem))
        return _json({"ok": True})

    async def metrics_endpoint(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        text = await run_in_threadpool(generate_latest, self.metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        return _json(openapi.DOCUMENT)


_append_decoder = msgspec.json.Decoder(api.AppendBody)
_multi_decoder = msgspec.json.Decoder(api.MultiAppendBody)
_receipt_decoder = msgspec.json.Decoder(Receipt)
_encode = msgspec.json.encode


def _encode_receipts(receipts: list[Receipt]) -> bytes:
    return b'{"receipts":' + _encode(receipts) + b"}"


def _encode_page(events: list[Any], nxt: int | None) -> bytes:
    return b'{"events":' + _encode(events) + b',"next":' + (b"null" if nxt is None else str(nxt).encode()) + b"}"


_RID_PREFIX = secrets.token_hex(4)
_rid_counter = itertools.count(1)


class _Access:
    """Outermost ASGI layer: request ids, ApiError answers, the access log and request metrics."""

    def __init__(self, app: ASGIApp, service: Service):
        self.app = app
        self.service = service
        self._counters: dict[tuple[str, int], Any] = {}  # labelled request counters (labels() costs a lookup)

    def _http_error(self, e: HTTPException, scope: Scope) -> ApiError:
        """The router's 404 and 405 as the API's error object (405 lists every method the path takes)."""
        if e.status_code == 405:
            allowed: set[str] = set()
            for route in self.service.router.routes:
                if isinstance(route, Route) and route.matches(scope)[0] != Match.NONE:
                    allowed |= route.methods or set()
            return ApiError(
                405,
                "method_not_allowed",
                f"{scope['method']} is not allowed on {scope['path']}",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        return ApiError(404, "not_found", f"no such endpoint: {scope['method']} {scope['path']}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                text = v.decode("latin-1")
                rid = text if _REQUEST_ID.match(text) else None
                break
        if rid is None:
            rid = f"{_RID_PREFIX}-{next(_rid_counter):x}"  # unique per process; cheaper than 8 random bytes
        scope["eventstore.request_id"] = rid
        scope["app"] = self  # the router then raises HTTPException for 404/405, answered below as JSON
        status = 500
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            try:
                await self.app(scope, receive, send_with_id)
            except ApiError as e:
                await _error(e)(scope, receive, send_with_id)
            except HTTPException as e:
                await _error(self._http_error(e, scope))(scope, receive, send_with_id)
        except Exception:
            log.exception("request failed", extra={"request_id": rid})
            if status == 500:
                with contextlib.suppress(Exception):
                    await _error(ApiError(500, "internal", f"internal error (request id {rid})"))(
                        scope, receive, send_with_id
                    )
        finally:
            route = scope.get("route")
            name = getattr(route, "name", None) or "unmatched"
            counter = self._counters.get((name, status))
            if counter is None:
                counter = self._counters[(name, status)] = self.service.metrics.requests.labels(name, str(status))
            counter.inc()
            if self.service.config.access_log:
                log.info(
                    "request",
                    extra={
                        "request_id": rid,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "principal": scope.get("eventstore.principal"),
                    },
                )


def create_app(store: EventStore, config: ServiceConfig | None = None) -> Service:
    """A Service; its ASGI application is ``.app`` (run it with uvicorn, or TestClient)."""
    return Service(store, config)
