"""Canonical payload encoding: the exact bytes that are stored and hashed.

Rules (docs/format.md, "Payload encoding"):

* JSON (RFC 8259) in UTF-8, no insignificant whitespace, object keys sorted by
  Unicode code point (which equals UTF-8 byte order), non-ASCII written as raw
  UTF-8, control characters escaped as ``\\uXXXX`` by msgspec.
* Allowed values: ``None``, ``bool``, ``int`` in [-2**63, 2**64-1], finite ``float``,
  ``str``, ``list``/``tuple`` (stored as arrays), ``dict`` with ``str`` keys, and
  msgspec Structs (stored as their fields). NaN and infinities, bigger integers,
  ``bytes`` and every other type are refused with the path of the bad value:
  what a reader gets back must be what the writer gave.

A verifier never re-encodes: it hashes the stored bytes.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from .errors import InvalidEvent

_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder()

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


def check_json(value: Any, path: str) -> Any:
    """Return ``value`` as plain JSON builtins, or raise InvalidEvent naming the bad path."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        if INT_MIN <= value <= INT_MAX:
            return value
        raise InvalidEvent(
            f"integer {value} at {path} does not fit in 64 bits; store it as a string", path=path
        )
    if t is float:
        if math.isfinite(value):
            return value
        raise InvalidEvent(f"{value} at {path} is not a finite number (NaN and infinities are refused)", path=path)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise InvalidEvent(f"object key {k!r} at {path} is not a string", path=path)
            check_json(v, f"{path}.{k}")
        return value
    if t is list or t is tuple:
        for i, v in enumerate(value):
            check_json(v, f"{path}[{i}]")
        return value
    if isinstance(value, msgspec.Struct):
        return check_json(msgspec.to_builtins(value, str_keys=True), path)
    if isinstance(value, bool):  # bool subclasses are not expected, but be exact
        return bool(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return check_json(int(value), path)
    if isinstance(value, float):
        return check_json(float(value), path)
    if isinstance(value, str):
        return check_json(str(value), path)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidEvent(f"binary value at {path} is not JSON; encode it as a base64 string", path=path)
    raise InvalidEvent(f"value of type {t.__name__} at {path} is not JSON-representable", path=path)


_SCALARS = (str, bool, type(None))


def encode_object(value: Any, path: str) -> tuple[bytes, dict[str, Any]]:
    """Validate ``value`` as a JSON object; return its canonical bytes and the checked dict.

    The common shape (a flat object of strings, small ints, finite floats, bools
    and nulls) is checked inline; anything nested or unusual goes through the
    exact ``check_json`` walk, which names the path of a bad value.
    """
    if isinstance(value, msgspec.Struct):
        value = msgspec.to_builtins(value, str_keys=True)
    if type(value) is not dict:
        raise InvalidEvent(
            f"{path} must be a JSON object, not {type(value).__name__}", path=path
        )
    for k, v in value.items():
        t = type(v)
        if t in _SCALARS and type(k) is str:
            continue
        if t is int and INT_MIN <= v <= INT_MAX and type(k) is str:
            continue
        if t is float and v - v == 0.0 and type(k) is str:  # finite (NaN and inf give NaN)
            continue
        check_json(value, path)
        break
    try:
        return _ENCODER.encode(value), value
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 encoding exists
        raise InvalidEvent(f"{_unencodable(value, path) or path} is not valid Unicode (a lone surrogate); use UTF-8 text",
                           path=path) from None


def _unencodable(value: Any, path: str) -> str | None:
    """Where, inside ``value``, the first string (value or key) sits that UTF-8 cannot encode."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and _unencodable(k, path) is not None:
                return f"an object key at {path}"
            found = _unencodable(v, f"{path}.{k}")
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for n, v in enumerate(value):
            found = _unencodable(v, f"{path}[{n}]")
            if found is not None:
                return found
    return None


def encode(value: Any) -> bytes:
    """Canonical bytes of an already-validated value."""
    return _ENCODER.encode(value)


def decode(raw: bytes | memoryview | None) -> Any:
    """Decode stored payload bytes (``None`` for an erased payload)."""
    if raw is None:
        return None
    return _DECODER.decode(raw)
