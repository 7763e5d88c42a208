"""Request and response bodies of HTTP API v1, and errors as ``{"error": {...}}``."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..errors import (
    AppendOutcomeUnknown,
    EventTooLarge,
    InvalidEvent,
    UserError,
    VerificationError,
    WrongExpectedVersion,
)
from ..records import NewEvent


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    subject: str | None = None
    personal: list[str] | None = None
    id: str | None = None
    """The event's id in its stream: a retry with the same id writes nothing (docs/format.md, "Event ids")."""


class AppendBody(msgspec.Struct, forbid_unknown_fields=True):
    events: list[EventIn]
    expected_version: int | None = None


class StreamAppend(msgspec.Struct, forbid_unknown_fields=True):
    stream_id: str
    events: list[EventIn]
    expected_version: int | None = None


class MultiAppendBody(msgspec.Struct, forbid_unknown_fields=True):
    appends: list[StreamAppend]


class ApiError(Exception):
    """An error answer: HTTP status, a stable code, a message and the JSON path (if any)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        path: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.headers = headers
        self.extra = extra

    def body(self) -> bytes:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "path": self.path}
        err.update(self.extra)
        return msgspec.json.encode({"error": err})


_AT = re.compile(r" - at `(\$[^`]*)`")


def decode_error(e: msgspec.DecodeError) -> ApiError:
    """A msgspec error as 400, with the JSON path split out of the message."""
    msg = str(e)
    if isinstance(e, msgspec.ValidationError):
        m = _AT.search(msg)
        path = m.group(1) if m else "$"
        text = _AT.sub("", msg)
        return ApiError(400, "invalid_request", text, path)
    return ApiError(400, "invalid_json", f"the body is not valid JSON: {msg}", "$")


def store_error(e: Exception, path_prefix: str = "$") -> ApiError:
    """Map a store error to its answer (the client maps the code back to the same exception)."""
    if isinstance(e, WrongExpectedVersion):
        return ApiError(
            409, "wrong_expected_version", str(e), None, stream_id=e.stream_id, expected=e.expected, actual=e.actual
        )
    if isinstance(e, EventTooLarge):
        return ApiError(413, "event_too_large", str(e), e.path)
    if isinstance(e, InvalidEvent):
        path = e.path
        if path is None:
            m = re.search(r"`(\$[^`]*)`", str(e))
            path = m.group(1) if m else None
        return ApiError(400, "invalid_event", str(e), path)
    if isinstance(e, VerificationError):
        return ApiError(422, "verification_failed", str(e))
    if isinstance(e, UserError):
        return ApiError(400, "invalid_request", str(e))
    if isinstance(e, AppendOutcomeUnknown):  # not retryable blindly: it may have been written
        return ApiError(
            503,
            "append_outcome_unknown",
            f"the append's outcome is unknown (the database connection broke during its commit): "
            f"check for position {e.last_position} with hash {e.last_hash} before retrying",
            headers={"Retry-After": "1"},
            first_position=e.first_position,
            last_position=e.last_position,
            last_hash=e.last_hash,
        )
    return ApiError(503, "unavailable", f"the database failed: {e}", headers={"Retry-After": "1"})


def to_new_events(events: list[EventIn], principal: str, path: str) -> list[NewEvent]:
    """NewEvents with ``metadata.principal`` set to the credential's name (the client's value is dropped)."""
    out = []
    for ev in events:
        metadata = dict(ev.metadata)
        metadata["principal"] = principal
        out.append(
            NewEvent(
                type=ev.type,
                data=ev.data,
                metadata=metadata,
                subject=ev.subject,
                personal=tuple(ev.personal) if ev.personal is not None else None,
                id=ev.id,
            )
        )
    return out


def event_error(e: InvalidEvent, path: str, index: int | None) -> ApiError:
    """An InvalidEvent from ``prepare`` located in the body: ``$.data.x`` of event 3 -> ``$.events[3].data.x``."""
    err = store_error(e)
    where = f"{path}[{index}]" if index is not None else path
    if err.path and err.path.startswith(("$.data", "$.metadata", "$.subject")):
        err.path = where + err.path[1:]
    else:
        err.path = where
    return err
