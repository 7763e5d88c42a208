"""The OpenAPI 3.1 description of HTTP API v1 (``GET /v1/openapi.json``); docs/api.md is the prose."""

from __future__ import annotations

from typing import Any

import msgspec

from ..records import Receipt, RecordedEvent, VerifyReport
from . import api


def _schemas() -> dict[str, Any]:
    (_, components) = msgspec.json.schema_components(
        [api.AppendBody, api.MultiAppendBody, Receipt, RecordedEvent, VerifyReport],
        ref_template="#/components/schemas/{name}",
    )
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "path"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "path": {
                        "type": ["string", "null"],
                        "description": "JSON path of the bad input, e.g. $.events[0].type",
                    },
                },
            }
        },
    }
    return components


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _ok(schema: dict[str, Any], description: str = "OK", media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


_ERR = {"description": "error", "content": {"application/json": {"schema": _ref("Error")}}}
_ERRORS = {str(s): _ERR for s in (400, 401, 403)}
_APPEND_ERRORS = {str(s): _ERR for s in (400, 401, 403, 409, 413, 422, 503)}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "A retry with the same key and body gets the first answer and writes nothing.",
}


def _q(name: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "integer", "minimum": 1}}


_STREAM = {"name": "stream_id", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGE = {
    "type": "object",
    "properties": {"events": {"type": "array", "items": _ref("RecordedEvent")}, "next": {"type": ["integer", "null"]}},
}
_RECEIPTS = {"type": "object", "properties": {"receipts": {"type": "array", "items": _ref("Receipt")}}}
_TEXT = {"type": "string"}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "eventstore",
        "version": "1",
        "description": "Tamper-evident event log for AI-agent systems: append with a scoped credential, "
        "read, subscribe, verify receipts, checkpoints and proofs.",
    },
    "components": {"schemas": _schemas(), "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/v1/streams/{stream_id}/events": {
            "post": {
                "summary": "Append events to one stream atomically (appender, admin)",
                "parameters": [_STREAM, _IDEMPOTENCY],
                "requestBody": _json_body("AppendBody"),
                "responses": {"200": _ok(_RECEIPTS, "durable"), **_APPEND_ERRORS},
            },
            "get": {
                "summary": "Read one stream in version order",
                "parameters": [_STREAM, _q("from_version"), _q("limit")],
                "responses": {"200": _ok(_PAGE), **_ERRORS},
            },
        },
        "/v1/streams/{stream_id}/version": {
            "get": {
                "summary": "The stream's current version (0: no events)",
                "parameters": [_STREAM],
                "responses": {"200": _ok({"type": "object"}), **_ERRORS},
            }
        },
        "/v1/append": {
            "post": {
                "summary": "Append to several streams in one transaction: all or none",
                "parameters": [_IDEMPOTENCY],
                "requestBody": _json_body("MultiAppendBody"),
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "receipts": {"type": "array", "items": {"type": "array", "items": _ref("Receipt")}}
                            },
                        }
                    ),
                    **_APPEND_ERRORS,
                },
            }
        },
        "/v1/events": {
            "get": {
                "summary": "Every event in global order (reader, admin)",
                "parameters": [_q("from_position"), _q("limit")],
                "responses": {"200": _ok(_PAGE), **_ERRORS},
            }
        },
        "/v1/events/subscribe": {
            "get": {
                "summary": "Server-Sent Events: catch up from a position, then follow live (Last-Event-ID resumes)",
                "parameters": [_q("from_position")],
                "responses": {"200": _ok(_TEXT, "event stream", "text/event-stream"), **_ERRORS},
            }
        },
        "/v1/head": {
            "get": {
                "summary": "Position and hash of the newest entry",
                "responses": {"200": _ok({"type": "object"}), **_ERRORS},
            }
        },
        "/v1/receipts/verify": {
            "post": {
                "summary": "Check a receipt against the stored entry",
                "requestBody": _json_body("Receipt"),
                "responses": {"200": _ok(_ref("VerifyReport")), **_ERRORS},
            }
        },
        "/v1/checkpoints/latest": {
            "get": {
                "summary": "The latest signed checkpoint (a C2SP note, text)",
                "responses": {"200": _ok(_TEXT, "note", "text/plain"), **_ERRORS},
            }
        },
        "/v1/checkpoints": {
            "post": {
                "summary": "Sign and store a checkpoint (serve --signing-key)",
                "responses": {"200": _ok(_TEXT, "note", "text/plain"), **_ERRORS},
            }
        },
        "/v1/proofs/inclusion": {
            "get": {
                "summary": "Inclusion proof of an entry",
                "parameters": [_q("position", True), _q("tree_size")],
                "responses": {"200": _ok({"type": "object"}), **_ERRORS},
            }
        },
        "/v1/proofs/consistency": {
            "get": {
                "summary": "Consistency proof between two tree sizes",
                "parameters": [_q("old", True), _q("new")],
                "responses": {"200": _ok({"type": "object"}), **_ERRORS},
            }
        },
        "/v1/tlog-proof/{position}": {
            "get": {
                "summary": "Offline receipt (c2sp.org/tlog-proof@v1) under the latest checkpoint covering it",
                "parameters": [{"name": "position", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": _ok(_TEXT, "proof", "text/plain"), **_ERRORS},
            }
        },
        "/healthz": {"get": {"summary": "Alive", "security": [], "responses": {"200": _ok({"type": "object"})}}},
        "/readyz": {
            "get": {
                "summary": "Database reachable, migrations current, writer not stuck",
                "security": [],
                "responses": {"200": _ok({"type": "object"}), "503": _ERR},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {"200": _ok(_TEXT, "metrics", "text/plain")},
            }
        },
    },
}
