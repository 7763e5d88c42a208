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
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import codec
from .backends import sql
from .clock import utc_now as _now
from .errors import (
    EventStoreError,
    InvalidEvent,
    SubjectErased,  # noqa: F401  (defined in eventstore.errors, the one hierarchy)
)

if TYPE_CHECKING:
    from .backends.base import Backend

ENVELOPE = "$personal"
AAD_DOMAIN = b"eventstore:personal:v1\x00"


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
        rows = self.backend.query(sql.SUBJECT_KEY, (subject,))
        if not rows:
            with self.backend.transaction() as tx:
                tx.execute(sql.SUBJECT_KEY_CREATE, (subject, AESGCM.generate_key(bit_length=256).hex(), _now()))
                rows = tx.execute(sql.SUBJECT_KEY, (subject,))
        key_hex = rows[0][0]
        if key_hex is None:
            raise SubjectErased(f"subject {subject!r} was erased; its personal data cannot be written again")
        key = _key_bytes(key_hex)
        if not key:
            raise EventStoreError(f"the key of subject {subject!r} in subject_keys is corrupt (not 32 bytes of hex)")
        return key

    def keys(self, subjects: Iterable[str]) -> dict[str, bytes | None]:
        """Keys of the subjects that have a key row: bytes, or None once erased.

        A subject absent from the result has no row at all (unknown subject: the
        event was not written by this store, or the row was removed by hand).
        A key row whose hex is corrupt maps to ``b""``, which decrypts nothing.
        """
        subjects = sorted(set(subjects))
        if not subjects:
            return {}
        rows = self.backend.query(sql.subject_keys_in(len(subjects)), subjects)
        return {s: (None if k is None else _key_bytes(k)) for s, k in rows}

    @staticmethod
    def erase_statement(subject: str, requested_by: str) -> tuple[str, tuple[Any, ...]]:
        """The statement that destroys a subject's key (or records a tombstone for an unknown one).

        Run by ``EventStore.erase`` inside the transaction that appends ``subject.erased``,
        so that the key goes if and only if the record is committed.
        """
        now = _now()
        return (sql.SUBJECT_KEY_ERASE, (subject, now, now, requested_by))


def _key_bytes(key_hex: Any) -> bytes:
    try:
        key = bytes.fromhex(key_hex)
    except (TypeError, ValueError):
        return b""
    return key if len(key) == 32 else b""


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
        out[field] = {
            ENVELOPE: {
                "v": 1,
                "subject": subject,
                "nonce": base64.b64encode(nonce).decode(),
                "ct": base64.b64encode(ct).decode(),
            }
        }
    return out


def _envelope_parts(value: dict[str, Any]) -> tuple[str, bytes, bytes] | None:
    """(subject, nonce, ct) of a well-formed envelope, else None."""
    env = value[ENVELOPE]
    if type(env) is not dict or env.get("v") != 1:
        return None
    subject, nonce, ct = env.get("subject"), env.get("nonce"), env.get("ct")
    if type(subject) is not str or type(nonce) is not str or type(ct) is not str:
        return None
    try:
        n, c = base64.b64decode(nonce, validate=True), base64.b64decode(ct, validate=True)
    except ValueError:
        return None
    if len(n) != 12 or len(c) < 16:
        return None
    return subject, n, c


def subjects_in(data: Any) -> set[str]:
    """Subjects named by the well-formed envelopes among ``data``'s fields."""
    if type(data) is not dict:
        return set()
    out = set()
    for v in data.values():
        if is_envelope(v) and type(v[ENVELOPE]) is dict and type(s := v[ENVELOPE].get("subject")) is str:
            out.add(s)
    return out


def decrypt_fields(
    data: dict[str, Any], type: str, keys: dict[str, bytes | None]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Decrypt envelopes with the keys at hand: (data, erased fields, problems).

    Never raises on stored bytes. A field reads as ``None`` and is listed in
    ``erased`` only when its subject's key row exists and the key was destroyed.
    A field that cannot be decrypted for any other reason (malformed envelope,
    unknown subject, ciphertext that does not authenticate, corrupt key) reads as
    ``None`` and is described in ``problems``: it was tampered with or not written
    by this store, which is not the same as erased.
    """
    out = dict(data)
    erased: list[str] = []
    problems: list[str] = []
    for field, value in data.items():
        if not is_envelope(value):
            continue
        out[field] = None
        parts = _envelope_parts(value)
        if parts is None:
            problems.append(f"$.data.{field}: malformed personal-data envelope")
            continue
        subject, nonce, ct = parts
        if subject not in keys:
            problems.append(f"$.data.{field}: unknown subject {subject!r} (no key was ever made for it here)")
            continue
        key = keys[subject]
        if key is None:
            erased.append(field)
            continue
        try:
            plain = AESGCM(key).decrypt(nonce, ct, _aad(subject, type, field)) if key else None
        except InvalidTag:
            plain = None
        if plain is None:
            problems.append(
                f"$.data.{field}: ciphertext does not authenticate under subject {subject!r}'s key "
                "(tampered, or not written by this store)"
            )
            continue
        try:
            out[field] = codec.decode(plain)
        except (msgspec.DecodeError, RecursionError):
            problems.append(f"$.data.{field}: decrypted value is not valid JSON")
    return out, erased, problems
