"""Erasure for privacy law by crypto-shredding, with the chain intact.

Personal fields of an event are encrypted (AES-256-GCM) with a key per data
subject, kept in ``subject_keys``, a table apart from the log. The stored event
holds only the ciphertext, so the chain commits to the ciphertext's digest.
Erasing a subject destroys its key: the ciphertext stays, every hash, receipt and
proof still verifies, and the fields read as erased from then on.

An encrypted field is stored as (docs/format.md, "Personal fields")::

    {"$personal": {"v": 1, "subject": "<subject id>", "nonce": "<base64 12 bytes>",
                   "ct": "<base64 ciphertext||tag>"}}

with associated data ``"eventstore:personal:v1" 0x00 subject 0x00 type 0x00 field``
and plaintext the canonical JSON of the field's value.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import codec
from .errors import InvalidEvent, UserError

if TYPE_CHECKING:
    from .backends.base import Backend

ENVELOPE = "$personal"
AAD_DOMAIN = b"eventstore:personal:v1\x00"


class SubjectErased(UserError):
    """A subject's key was destroyed: no new personal data can be written for it."""


def _aad(subject: str, type: str, field: str) -> bytes:
    return AAD_DOMAIN + subject.encode() + b"\x00" + type.encode() + b"\x00" + field.encode()


def is_envelope(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and ENVELOPE in value


class KeyStore:
    """Per-subject keys in the ``subject_keys`` table (hex text; NULL once erased)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def key_for_writing(self, subject: str) -> bytes:
        """The subject's key, created on first use; refuses an erased subject."""
        rows = self.backend.query("SELECT key_hex FROM subject_keys WHERE subject_id = ?", (subject,))
        if not rows:
            with self.backend.transaction() as tx:
                tx.execute(
                    "INSERT INTO subject_keys (subject_id, key_hex, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (subject_id) DO NOTHING",
                    (subject, AESGCM.generate_key(bit_length=256).hex(), _now()),
                )
                rows = tx.execute("SELECT key_hex FROM subject_keys WHERE subject_id = ?", (subject,))
        key_hex = rows[0][0]
        if key_hex is None:
            raise SubjectErased(f"subject {subject!r} was erased; its personal data cannot be written again")
        return bytes.fromhex(key_hex)

    def keys(self, subjects: Iterable[str]) -> dict[str, bytes | None]:
        """Current keys (None for erased or unknown subjects)."""
        subjects = sorted(set(subjects))
        if not subjects:
            return {}
        marks = ",".join("?" * len(subjects))
        rows = self.backend.query(f"SELECT subject_id, key_hex FROM subject_keys WHERE subject_id IN ({marks})",
                                  subjects)
        found = {s: (bytes.fromhex(k) if k else None) for s, k in rows}
        return {s: found.get(s) for s in subjects}

    def erase(self, subject: str, requested_by: str) -> bool:
        """Destroy the subject's key (or record a tombstone). True if a key was destroyed."""
        now = _now()
        with self.backend.transaction() as tx:
            had = tx.execute("SELECT key_hex FROM subject_keys WHERE subject_id = ?", (subject,))
            tx.execute(
                "INSERT INTO subject_keys (subject_id, key_hex, created_at, erased_at, erased_by) "
                "VALUES (?, NULL, ?, ?, ?) ON CONFLICT (subject_id) DO UPDATE SET key_hex = NULL, "
                "erased_at = excluded.erased_at, erased_by = excluded.erased_by",
                (subject, now, now, requested_by),
            )
        return bool(had and had[0][0])


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encrypt_fields(data: dict[str, Any], type: str, subject: str, fields: Iterable[str], key: bytes) -> dict[str, Any]:
    """A copy of ``data`` with the named top-level fields encrypted (absent/null fields stay as they are)."""
    out = dict(data)
    aes = AESGCM(key)
    for field in fields:
        value = out.get(field)
        if value is None:
            continue
        if is_envelope(value):
            raise InvalidEvent(f"field {field!r} is already encrypted", path=f"$.data.{field}")
        nonce = os.urandom(12)
        ct = aes.encrypt(nonce, codec.encode(value), _aad(subject, type, field))
        out[field] = {ENVELOPE: {"v": 1, "subject": subject, "nonce": base64.b64encode(nonce).decode(),
                                 "ct": base64.b64encode(ct).decode()}}
    return out


def subjects_in(data: Any) -> set[str]:
    if type(data) is not dict:
        return set()
    return {v[ENVELOPE]["subject"] for v in data.values() if is_envelope(v)}


def decrypt_fields(data: dict[str, Any], type: str, keys: dict[str, bytes | None]) -> tuple[dict[str, Any], list[str]]:
    """Decrypt envelopes with the keys at hand; erased fields become None and are listed."""
    out = dict(data)
    erased: list[str] = []
    for field, value in data.items():
        if not is_envelope(value):
            continue
        env = value[ENVELOPE]
        key = keys.get(env["subject"])
        if key is None:
            out[field] = None
            erased.append(field)
            continue
        plain = AESGCM(key).decrypt(base64.b64decode(env["nonce"]), base64.b64decode(env["ct"]),
                                    _aad(env["subject"], type, field))
        out[field] = codec.decode(plain)
    return out, erased
