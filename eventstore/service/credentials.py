"""Credentials of the HTTP service: scoped bearer tokens, stored only as hashes.

A secret is ``es_`` + 43 characters of ``secrets.token_urlsafe(32)`` (256 random bits).
The ``credentials`` table (migration 0006) keeps its SHA-256 only; a request's token is
hashed and looked up, and the stored hash compared with ``hmac.compare_digest``. The
lookup is done on every request (an indexed read), so a revocation or an expiry takes
effect from the next request on, in every ``serve`` process.

Roles:

- ``appender``: appends to streams matching its patterns and reads those streams back;
- ``reader``: reads every stream, the global log, and subscribes;
- ``auditor``: checkpoints, proofs, receipt checks, the head;
- ``admin``: everything.

Patterns are ``fnmatch.fnmatchcase`` globs over the whole stream id: ``*`` matches any
run of characters *including* ``/`` (``agent-7/*`` matches ``agent-7/a`` and
``agent-7/a/b``, not ``agent-7``), ``?`` one character, ``[abc]`` one of a set; case
matters. Creating and revoking a credential appends ``credential.created`` /
``credential.revoked`` to the stream ``credentials`` so the log shows who could write when.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Literal

import msgspec

from ..errors import UserError
from ..records import NewEvent
from ..store import EventStore

Role = Literal["appender", "reader", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("appender", "reader", "auditor", "admin")
SECRET_PREFIX = "es_"
CREDENTIALS_STREAM = "credentials"
"""Written only by ``eventstore token``: the service refuses client appends to it."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Credential(msgspec.Struct, frozen=True, kw_only=True):
    """A credential as listed (never its secret)."""

    name: str
    role: str
    patterns: list[str]
    created_at: str
    created_by: str
    expires_at: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and _parse_iso(self.expires_at) <= time.time():
            return "expired"
        return "active"


class Principal(msgspec.Struct, frozen=True):
    """The credential a request authenticated as: what it may do."""

    name: str
    role: str
    patterns: tuple[str, ...]
    expires_at: float | None = None

    def may_append(self, stream_id: str) -> bool:
        if stream_id == CREDENTIALS_STREAM:
            return False
        if self.role == "admin":
            return True
        return self.role == "appender" and self.matches(stream_id)

    def may_read_stream(self, stream_id: str) -> bool:
        if self.role in ("admin", "reader"):
            return True
        return self.role == "appender" and self.matches(stream_id)

    def may_read_all(self) -> bool:
        return self.role in ("admin", "reader")

    def may_audit(self) -> bool:
        return self.role in ("admin", "auditor")

    def matches(self, stream_id: str) -> bool:
        return any(fnmatch.fnmatchcase(stream_id, p) for p in self.patterns)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise UserError(f"bad duration {text!r}: use a positive number and a unit s, m, h, d or w (e.g. 30d)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(
            f"bad credential name {name!r}: 1-64 characters of A-Z a-z 0-9 . _ @ -, starting with a letter or digit"
        )
    return name


class Credentials:
    """The ``credentials`` table of one store."""

    def __init__(self, store: EventStore):
        self.store = store
        self._cache: dict[str, Principal] = {}  # secret hash -> a credential valid when it was looked up

    def create(
        self,
        name: str,
        role: str,
        patterns: list[str] | tuple[str, ...] = (),
        *,
        expires_in: int | None = None,
        created_by: str,
    ) -> tuple[str, Credential]:
        """Create a credential; return (secret, credential). The secret is not kept anywhere."""
        check_name(name)
        if role not in ROLES:
            raise UserError(f"bad role {role!r}: one of {', '.join(ROLES)}")
        patterns = list(patterns)
        if role == "appender" and not patterns:
            raise UserError("an appender credential needs at least one --streams pattern (e.g. 'agent-7/*')")
        if role != "appender" and patterns:
            raise UserError(f"--streams applies to appender credentials only, not to {role!r}")
        for p in patterns:
            if not p or len(p) > 512:
                raise UserError(f"bad stream pattern {p!r}: 1-512 characters")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        expires_at = _iso(now + expires_in) if expires_in is not None else None
        cred = Credential(
            name=name, role=role, patterns=patterns, created_at=_iso(now), created_by=created_by, expires_at=expires_at
        )
        with self.store.backend.transaction() as tx:
            if tx.execute("SELECT 1 FROM credentials WHERE name = ?", (name,)):
                raise UserError(f"a credential named {name!r} exists already (names are never reused)")
            tx.execute(
                "INSERT INTO credentials (name, role, patterns, secret_hash, created_at, created_by, "
                "expires_at) VALUES (?,?,?,?,?,?,?)",
                (
                    name,
                    role,
                    json.dumps(patterns),
                    hash_secret(secret),
                    cred.created_at,
                    created_by,
                    None if expires_in is None else now + expires_in,
                ),
            )
        data = {"name": name, "role": role, "patterns": patterns, "created_by": created_by}
        if expires_at is not None:
            data["expires_at"] = expires_at
        try:
            self.store.append(CREDENTIALS_STREAM, [NewEvent(type="credential.created", data=data)])
        except BaseException:
            with self.store.backend.transaction() as tx:  # no credential the log does not show
                tx.execute("DELETE FROM credentials WHERE name = ?", (name,))
            raise
        return secret, cred

    def revoke(self, name: str, *, revoked_by: str) -> Credential:
        """Revoke at once (from the next request on) and record it in the log."""
        now = _iso(time.time())
        with self.store.backend.transaction() as tx:
            rows = tx.execute("SELECT revoked_at FROM credentials WHERE name = ?", (name,))
            if not rows:
                raise UserError(f"no credential named {name!r}")
            if rows[0][0] is not None:
                raise UserError(f"credential {name!r} was revoked already at {rows[0][0]}")
            tx.execute("UPDATE credentials SET revoked_at = ?, revoked_by = ? WHERE name = ?", (now, revoked_by, name))
        self.store.append(
            CREDENTIALS_STREAM, [NewEvent(type="credential.revoked", data={"name": name, "revoked_by": revoked_by})]
        )
        return self.get(name)

    def get(self, name: str) -> Credential:
        for c in self.list():
            if c.name == name:
                return c
        raise UserError(f"no credential named {name!r}")

    def list(self) -> list[Credential]:
        rows = self.store.backend.query(
            "SELECT name, role, patterns, created_at, created_by, expires_at, revoked_at, revoked_by "
            "FROM credentials ORDER BY created_at, name"
        )
        return [
            Credential(
                name=n,
                role=r,
                patterns=json.loads(p),
                created_at=c,
                created_by=b,
                expires_at=None if e is None else _iso(e),
                revoked_at=ra,
                revoked_by=rb,
            )
            for n, r, p, c, b, e, ra, rb in rows
        ]

    def authenticate(self, secret: str) -> tuple[Principal | None, str]:
        """(principal, "") for a valid secret, else (None, why): missing, unknown, revoked, expired."""
        if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
            return None, "unknown"
        h = hash_secret(secret)
        rows = self.store.backend.query(
            "SELECT name, role, patterns, secret_hash, expires_at, revoked_at FROM credentials WHERE secret_hash = ?",
            (h,),
        )
        if not rows:
            return None, "unknown"
        name, role, patterns, stored, expires_at, revoked_at = rows[0]
        if not hmac.compare_digest(stored.encode(), h.encode()):
            return None, "unknown"
        if revoked_at is not None:
            return None, "revoked"
        if expires_at is not None and expires_at <= time.time():
            return None, "expired"
        return Principal(name, role, tuple(json.loads(patterns)), expires_at), ""

    def authenticate_for_append(self, secret: str) -> tuple[Principal | None, str]:
        """Like ``authenticate``, from a cache of valid credentials (no query per request).

        Only for appends: the writer checks every batch's credentials against the table
        (``refused``) in the same breath as it commits, so a revocation still takes effect
        from the next append on, at one query per commit instead of one per request.
        """
        h = hash_secret(secret)
        p = self._cache.get(h)
        if p is None:
            p, why = self.authenticate(secret)
            if p is None:
                return None, why
            if len(self._cache) >= 10_000:
                self._cache.clear()
            self._cache[h] = p
        if p.expires_at is not None and p.expires_at <= time.time():
            self._cache.pop(h, None)
            return None, "expired"
        return p, ""

    def forget(self, name: str) -> None:
        for h, p in list(self._cache.items()):
            if p.name == name:
                self._cache.pop(h, None)

    def refused(self, names: set[str]) -> dict[str, str]:
        """Of these credential names, those revoked or expired now: name -> "revoked" | "expired"."""
        ordered = sorted(names)
        rows = self.store.backend.query(
            f"SELECT name, expires_at, revoked_at FROM credentials WHERE name IN ({','.join('?' * len(ordered))})",
            ordered,
        )
        now = time.time()
        out = {n: "unknown" for n in names}
        for name, expires_at, revoked_at in rows:
            if revoked_at is not None:
                out[name] = "revoked"
            elif expires_at is not None and expires_at <= now:
                out[name] = "expired"
            else:
                del out[name]
        return out
