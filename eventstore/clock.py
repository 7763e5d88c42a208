"""The store's one clock format: UTC as ``2026-01-01T00:00:00.000000Z`` (docs/format.md).

``recorded_at`` of every entry, and every ``*_at`` column the store writes, use it: fixed
width, so the text sorts as the time does.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """UTC now, microseconds, ``Z`` (isoformat, then "+00:00" -> "Z": faster than strftime)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
