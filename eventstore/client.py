"""A client of ``eventstore serve`` with the store's method names and return types.

An agent swaps ``EventStore.open(path)`` for ``Client(url, token)`` and nothing else::

    with Client("http://127.0.0.1:8787", os.environ["EVENTSTORE_TOKEN"]) as store:
        receipts = store.append("agent-7/run-1", [NewEvent(type="note", data={"x": 1})])

Connections are pooled and kept alive (httpx). Every append carries an
``Idempotency-Key`` generated per call, so a retry after a dropped connection, a
timeout or a 503 gets the first answer and never writes twice. Errors come back as the
store's exceptions (``WrongExpectedVersion``, ``InvalidEvent``, ``EventTooLarge``...);
credentials refused raise ``Unauthorized`` / ``Forbidden``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import msgspec

from .errors import (  # noqa: F401  (defined in eventstore.errors, the one hierarchy)
    AppendOutcomeUnknown,
    EventTooLarge,
    Forbidden,
    InvalidEvent,
    ServiceError,
    Unauthorized,
    UserError,
    VerificationError,
    WrongExpectedVersion,
)
from .records import NewEvent, Receipt, RecordedEvent, VerifyReport


class _Page(msgspec.Struct):
    events: list[RecordedEvent]
    next: int | None = None


class _Receipts(msgspec.Struct):
    receipts: list[Receipt]


class _ManyReceipts(msgspec.Struct):
    receipts: list[list[Receipt]]


_page = msgspec.json.Decoder(_Page)
_receipts = msgspec.json.Decoder(_Receipts)
_many = msgspec.json.Decoder(_ManyReceipts)
_report = msgspec.json.Decoder(VerifyReport)
_event = msgspec.json.Decoder(RecordedEvent)
RETRY_STATUSES = frozenset({502, 503, 504})


def shown_url(url: str) -> str:
    """``url`` without a user:password part: what messages and repr show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, "")).rstrip("/")


def _q(stream_id: str) -> str:
    return quote(stream_id, safe="/@:")


def _event_json(ev: NewEvent) -> dict[str, Any]:
    if not isinstance(ev, NewEvent):
        raise InvalidEvent(f"append takes a list of NewEvent, not {type(ev).__name__}")
    out: dict[str, Any] = {
        "type": ev.type,
        "data": msgspec.to_builtins(ev.data),
        "metadata": msgspec.to_builtins(ev.metadata),
    }
    if ev.subject is not None:
        out["subject"] = ev.subject
    if ev.personal is not None:
        out["personal"] = list(ev.personal)
    if ev.id is not None:
        out["id"] = ev.id
    return out


def _events_json(events: Sequence[NewEvent]) -> list[dict[str, Any]]:
    if isinstance(events, NewEvent):
        raise InvalidEvent("append takes a list of NewEvent, not a single NewEvent")
    return [_event_json(e) for e in events]


def raise_for(response: httpx.Response) -> None:
    """Turn an error answer into the store's exception for its code."""
    if response.status_code < 400:
        return
    try:
        err = msgspec.json.decode(response.content)["error"]
        code, message, path = err["code"], err["message"], err.get("path")
    except Exception:
        raise ServiceError(f"HTTP {response.status_code}: {response.text[:200]}", status=response.status_code) from None
    if code == "wrong_expected_version":
        raise WrongExpectedVersion(err["stream_id"], err["expected"], err["actual"])
    if code in ("event_too_large", "payload_too_large", "too_many_events"):
        raise EventTooLarge(message, path=path)
    if code in ("invalid_event", "invalid_request", "invalid_json"):
        raise InvalidEvent(message, path=path)
    if code == "unauthorized":
        raise Unauthorized(message)
    if code == "forbidden":
        raise Forbidden(message)
    if code == "verification_failed":
        raise VerificationError(message)
    if code == "append_outcome_unknown":
        raise AppendOutcomeUnknown(
            message,
            first_position=err["first_position"],
            last_position=err["last_position"],
            last_hash=err["last_hash"],
        )
    if response.status_code < 500 and code != "request_timeout":
        raise UserError(message)
    raise ServiceError(message, status=response.status_code, code=code)


def _retryable(response: httpx.Response) -> bool:
    """502/503/504 are retried (with the same Idempotency-Key), except an append whose outcome is
    unknown: it may have been written, so it is raised (AppendOutcomeUnknown), never resent blindly."""
    return response.status_code in RETRY_STATUSES and b'"append_outcome_unknown"' not in response.content


def _retry_after(response: httpx.Response | None, attempt: int) -> float:
    if response is not None:
        ra: str = response.headers.get("retry-after", "")
        if ra.isdigit():
            return min(float(ra), 30.0)
    return min(0.1 * 2.0**attempt, 5.0)


class _Base:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0, retries: int = 5):
        self.url = url.rstrip("/")
        self.shown = shown_url(url)
        self.retries = retries
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}({self.shown!r})"

    @staticmethod
    def _append_body(events: Sequence[NewEvent], expected_version: int | None) -> bytes:
        return msgspec.json.encode({"events": _events_json(events), "expected_version": expected_version})

    @staticmethod
    def _many_body(batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> bytes:
        return msgspec.json.encode(
            {"appends": [{"stream_id": s, "events": _events_json(e), "expected_version": x} for s, e, x in batch]}
        )


class Client(_Base):
    """Blocking client; safe to share between threads (httpx.Client is)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        transport: httpx.BaseTransport | None = None,
    ):
        super().__init__(url, token, timeout=timeout, retries=retries)
        self._http = httpx.Client(
            base_url=self.url, headers=self._headers, timeout=self._timeout, limits=self._limits, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": uuid.uuid4().hex} if idempotent else None
        attempt = 0
        while True:
            response = None
            try:
                response = self._http.request(method, path, content=content, params=params, headers=headers)
                if not _retryable(response) or attempt >= self.retries:
                    raise_for(response)
                    return response
            except httpx.TransportError as e:
                if attempt >= self.retries:
                    raise ServiceError(f"cannot reach {self.shown}: {type(e).__name__}: {e}") from None
            time.sleep(_retry_after(response, attempt))
            attempt += 1

    # -- the EventStore interface -----------------------------------------------------
    def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> list[Receipt]:
        r = self._request(
            "POST",
            f"/v1/streams/{_q(stream_id)}/events",
            content=self._append_body(events, expected_version),
            idempotent=True,
        )
        return _receipts.decode(r.content).receipts

    def append_many(self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> list[list[Receipt]]:
        if not batch:
            return []
        r = self._request("POST", "/v1/append", content=self._many_body(batch), idempotent=True)
        return _many.decode(r.content).receipts

    def stream_version(self, stream_id: str) -> int:
        return int(msgspec.json.decode(self._request("GET", f"/v1/streams/{_q(stream_id)}/version").content)["version"])

    def head(self) -> tuple[int, str | None]:
        h = msgspec.json.decode(self._request("GET", "/v1/head").content)
        return h["position"], h["hash"]

    def read_stream(self, stream_id: str, from_version: int = 1, *, batch_size: int = 1000) -> Iterator[RecordedEvent]:
        cursor: int | None = max(1, from_version)
        while cursor is not None:
            page = _page.decode(
                self._request(
                    "GET", f"/v1/streams/{_q(stream_id)}/events", params={"from_version": cursor, "limit": batch_size}
                ).content
            )
            yield from page.events
            cursor = page.next

    def read_all(
        self, from_position: int = 1, *, to_position: int | None = None, batch_size: int = 1000
    ) -> Iterator[RecordedEvent]:
        cursor: int | None = max(1, from_position)
        while cursor is not None:
            page = _page.decode(
                self._request("GET", "/v1/events", params={"from_position": cursor, "limit": batch_size}).content
            )
            for ev in page.events:
                if to_position is not None and ev.position > to_position:
                    return
                yield ev
            cursor = page.next

    def subscribe(self, from_position: int = 1, *, reconnect: bool = True) -> Iterator[RecordedEvent]:
        """Every event from ``from_position`` on, then new ones as they are appended (forever).

        A dropped connection is resumed with Last-Event-ID: nothing is missed or repeated.
        """
        last = max(1, from_position) - 1
        attempt = 0
        while True:
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                with self._http.stream(
                    "GET",
                    "/v1/events/subscribe",
                    params={"from_position": last + 1},
                    headers=headers,
                    timeout=httpx.Timeout(self._timeout.connect, read=None),
                ) as r:
                    if r.status_code >= 400:
                        r.read()
                        raise_for(r)
                    attempt = 0
                    for ev in _sse_events(r.iter_lines()):
                        last = ev.position
                        yield ev
            except httpx.TransportError:
                if not reconnect or attempt >= self.retries:
                    raise ServiceError(f"the subscription to {self.shown} was lost") from None
            time.sleep(_retry_after(None, attempt))
            attempt += 1

    def verify_receipt(self, receipt: Receipt) -> VerifyReport:
        r = self._request("POST", "/v1/receipts/verify", content=msgspec.json.encode(receipt))
        return _report.decode(r.content)

    def latest_checkpoint(self) -> str:
        """The latest signed checkpoint, as note text."""
        return self._request("GET", "/v1/checkpoints/latest").text

    def checkpoint(self) -> str:
        """Sign and store a checkpoint (needs serve --signing-key); returns the note text."""
        return self._request("POST", "/v1/checkpoints").text

    def prove_inclusion(self, position: int, tree_size: int | None = None) -> Any:
        from .proofs import InclusionProof

        params = {"position": position, **({"tree_size": tree_size} if tree_size else {})}
        return msgspec.json.decode(
            self._request("GET", "/v1/proofs/inclusion", params=params).content, type=InclusionProof
        )

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> Any:
        from .proofs import ConsistencyProof

        params = {"old": old_size, **({"new": new_size} if new_size else {})}
        return msgspec.json.decode(
            self._request("GET", "/v1/proofs/consistency", params=params).content, type=ConsistencyProof
        )

    def tlog_proof(self, position: int) -> str:
        return self._request("GET", f"/v1/tlog-proof/{position}").text


class _SseParser:
    """Server-Sent Events lines -> RecordedEvents; an ``event: error`` raises the store's exception."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.kind = "event"

    def feed(self, line: str) -> RecordedEvent | None:
        if line.startswith("data:"):
            self.data.append(line[5:].lstrip())
        elif line.startswith("event:"):
            self.kind = line[6:].strip()
        elif not line and self.data:
            text, kind = "\n".join(self.data), self.kind
            self.data, self.kind = [], "event"
            if kind == "error":
                raise_for(httpx.Response(401, content=text.encode()))
            return _event.decode(text)
        return None


def _sse_events(lines: Iterator[str]) -> Iterator[RecordedEvent]:
    parser = _SseParser()
    for line in lines:
        ev = parser.feed(line)
        if ev is not None:
            yield ev


class AsyncClient(_Base):
    """The same calls, awaitable (httpx.AsyncClient)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        super().__init__(url, token, timeout=timeout, retries=retries)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=self._timeout, limits=self._limits, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": uuid.uuid4().hex} if idempotent else None
        attempt = 0
        while True:
            response = None
            try:
                response = await self._http.request(method, path, content=content, params=params, headers=headers)
                if not _retryable(response) or attempt >= self.retries:
                    raise_for(response)
                    return response
            except httpx.TransportError as e:
                if attempt >= self.retries:
                    raise ServiceError(f"cannot reach {self.shown}: {type(e).__name__}: {e}") from None
            await asyncio.sleep(_retry_after(response, attempt))
            attempt += 1

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> list[Receipt]:
        r = await self._request(
            "POST",
            f"/v1/streams/{_q(stream_id)}/events",
            content=self._append_body(events, expected_version),
            idempotent=True,
        )
        return _receipts.decode(r.content).receipts

    async def append_many(self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> list[list[Receipt]]:
        if not batch:
            return []
        r = await self._request("POST", "/v1/append", content=self._many_body(batch), idempotent=True)
        return _many.decode(r.content).receipts

    async def stream_version(self, stream_id: str) -> int:
        r = await self._request("GET", f"/v1/streams/{_q(stream_id)}/version")
        return int(msgspec.json.decode(r.content)["version"])

    async def head(self) -> tuple[int, str | None]:
        h = msgspec.json.decode((await self._request("GET", "/v1/head")).content)
        return h["position"], h["hash"]

    async def read_stream(
        self, stream_id: str, from_version: int = 1, *, batch_size: int = 1000
    ) -> AsyncIterator[RecordedEvent]:
        cursor: int | None = max(1, from_version)
        while cursor is not None:
            r = await self._request(
                "GET", f"/v1/streams/{_q(stream_id)}/events", params={"from_version": cursor, "limit": batch_size}
            )
            page = _page.decode(r.content)
            for ev in page.events:
                yield ev
            cursor = page.next

    async def read_all(
        self, from_position: int = 1, *, to_position: int | None = None, batch_size: int = 1000
    ) -> AsyncIterator[RecordedEvent]:
        cursor: int | None = max(1, from_position)
        while cursor is not None:
            r = await self._request("GET", "/v1/events", params={"from_position": cursor, "limit": batch_size})
            page = _page.decode(r.content)
            for ev in page.events:
                if to_position is not None and ev.position > to_position:
                    return
                yield ev
            cursor = page.next

    async def subscribe(self, from_position: int = 1) -> AsyncIterator[RecordedEvent]:
        last = max(1, from_position) - 1
        attempt = 0
        while True:
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                async with self._http.stream(
                    "GET",
                    "/v1/events/subscribe",
                    params={"from_position": last + 1},
                    headers=headers,
                    timeout=httpx.Timeout(self._timeout.connect, read=None),
                ) as r:
                    if r.status_code >= 400:
                        await r.aread()
                        raise_for(r)
                    attempt = 0
                    parser = _SseParser()
                    async for line in r.aiter_lines():
                        ev = parser.feed(line)
                        if ev is not None:
                            last = ev.position
                            yield ev
            except httpx.TransportError:
                if attempt >= self.retries:
                    raise ServiceError(f"the subscription to {self.shown} was lost") from None
            await asyncio.sleep(_retry_after(None, attempt))
            attempt += 1

    async def verify_receipt(self, receipt: Receipt) -> VerifyReport:
        r = await self._request("POST", "/v1/receipts/verify", content=msgspec.json.encode(receipt))
        return _report.decode(r.content)

    async def latest_checkpoint(self) -> str:
        return (await self._request("GET", "/v1/checkpoints/latest")).text

    async def checkpoint(self) -> str:
        return (await self._request("POST", "/v1/checkpoints")).text

    async def prove_inclusion(self, position: int, tree_size: int | None = None) -> Any:
        from .proofs import InclusionProof

        params = {"position": position, **({"tree_size": tree_size} if tree_size else {})}
        r = await self._request("GET", "/v1/proofs/inclusion", params=params)
        return msgspec.json.decode(r.content, type=InclusionProof)

    async def prove_consistency(self, old_size: int, new_size: int | None = None) -> Any:
        from .proofs import ConsistencyProof

        params = {"old": old_size, **({"new": new_size} if new_size else {})}
        r = await self._request("GET", "/v1/proofs/consistency", params=params)
        return msgspec.json.decode(r.content, type=ConsistencyProof)

    async def tlog_proof(self, position: int) -> str:
        return (await self._request("GET", f"/v1/tlog-proof/{position}")).text
