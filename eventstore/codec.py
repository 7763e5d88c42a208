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
* Strings must be valid Unicode (no lone surrogates): they are stored as UTF-8.
* Nesting is bounded: at most ``MAX_DEPTH`` objects/arrays deep (the data or
  metadata object itself counts as 1), so that every reader, whatever its
  recursion limit, can decode what was stored.
* The key ``"$personal"`` (``RESERVED_KEY``) is refused at any depth: it marks an
  encrypted field, and only the store makes those (eventstore/shredding.py).

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
MAX_DEPTH = 64
"""Deepest nesting of objects/arrays accepted on append (the top-level object is depth 1)."""
RESERVED_KEY = "$personal"
"""Marks an encrypted personal field; refused in client data and metadata at any depth."""


def check_json(value: Any, path: str, depth: int = 1) -> Any:
    """Return ``value`` as plain JSON builtins, or raise InvalidEvent naming the bad path.

    ``depth`` is the nesting level of ``value`` if it is an object or array.
    """
    t = type(value)
    if t is str or t is bool or value is None:  # strings: see _check_unicode
        return value
    if t is int:
        if INT_MIN <= value <= INT_MAX:
            return value
        raise InvalidEvent(f"integer {value} at {path} does not fit in 64 bits; store it as a string", path=path)
    if t is float:
        if math.isfinite(value):
            return value
        raise InvalidEvent(f"{value} at {path} is not a finite number (NaN and infinities are refused)", path=path)
    if t is dict or t is list or t is tuple:
        if depth > MAX_DEPTH:
            raise InvalidEvent(f"{path} is nested deeper than {MAX_DEPTH} levels of objects and arrays", path=path)
        if t is dict:
            if RESERVED_KEY in value:
                raise InvalidEvent(
                    f"{path}.{RESERVED_KEY}: the key {RESERVED_KEY!r} is reserved for fields the store "
                    "encrypts (name the field in NewEvent.personal instead)",
                    path=f"{path}.{RESERVED_KEY}",
                )
            for k, v in value.items():
                if type(k) is not str:
                    raise InvalidEvent(f"object key {k!r} at {path} is not a string", path=path)
                check_json(v, f"{path}.{k}", depth + 1)
        else:
            for i, v in enumerate(value):
                check_json(v, f"{path}[{i}]", depth + 1)
        return value
    if isinstance(value, msgspec.Struct):
        return check_json(msgspec.to_builtins(value, str_keys=True), path, depth)
    if isinstance(value, bool):  # bool subclasses are not expected, but be exact
        return bool(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return check_json(int(value), path)
    if isinstance(value, float):
        return check_json(float(value), path)
    if isinstance(value, str):
        return check_json(str(value), path, depth)
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
        raise InvalidEvent(f"{path} must be a JSON object, not {type(value).__name__}", path=path)
    if RESERVED_KEY in value:
        check_json(value, path)  # raises, naming the path
    for k, v in value.items():
        t = type(v)
        if t in _SCALARS and type(k) is str:
            continue
        if t is int and INT_MIN <= v <= INT_MAX and type(k) is str:
            continue
        if t is float and v - v == 0.0 and type(k) is str:  # finite (NaN and inf give NaN)
            continue
        try:
            check_json(value, path)
        except RecursionError:
            raise InvalidEvent(f"{path} is nested too deeply", path=path) from None
        break
    try:
        return _ENCODER.encode(value), value
    except UnicodeEncodeError:  # a lone surrogate somewhere: find it (rare, so not checked up front)
        _check_unicode(value, path)
        raise  # pragma: no cover - _check_unicode found it


def _check_unicode(value: Any, path: str) -> None:
    """Raise InvalidEvent at the first string or key that is not valid Unicode (cannot be UTF-8)."""
    if type(value) is str:
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidEvent(
                f"string at {path} is not valid Unicode (lone surrogate); it cannot be stored as UTF-8", path=path
            ) from None
    elif type(value) is dict:
        for k, v in value.items():
            _check_unicode(k, f"{path} (key {k!r})")
            _check_unicode(v, f"{path}.{k}")
    elif type(value) is list or type(value) is tuple:
        for i, v in enumerate(value):
            _check_unicode(v, f"{path}[{i}]")


def encode(value: Any) -> bytes:
    """Canonical bytes of an already-validated value."""
    return _ENCODER.encode(value)


def decode(raw: bytes | memoryview | None) -> Any:
    """Decode stored payload bytes (``None`` for an erased payload)."""
    if raw is None:
        return None
    return _DECODER.decode(raw)
