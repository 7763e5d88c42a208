"""Versioned schema migrations, shipped inside the package.

Files live in ``migrations/<dialect>/NNNN_name.sql`` (installed as
``eventstore/_migrations``). A file has a header of ``-- key: value`` lines, then
``-- up`` and ``-- down`` sections::

    -- destructive: false        # up loses data? then it needs allow_destructive
    -- down-destructive: true    # down loses data? then it needs allow_destructive
    -- up
    CREATE TABLE ...;
    -- down
    DROP TABLE ...;

Applied migrations are recorded in ``schema_migrations`` with the SHA-256 of the
file; a changed file for an applied migration is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import MigrationError
from .records import AppliedMigration, Migration  # noqa: F401  (AppliedMigration re-exported)

if TYPE_CHECKING:
    from .backends.base import Backend

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    state: Literal["applied", "pending", "changed", "unknown"]
    destructive: bool
    applied_at: str | None


def migrations_dir(dialect: str) -> Path:
    """Where this dialect's files are: inside the wheel, else the source checkout."""
    packaged = resources.files("eventstore") / "_migrations" / dialect
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "migrations" / dialect
    if checkout.is_dir():
        return checkout
    raise MigrationError(f"no migrations found for {dialect!r} (looked in {packaged} and {checkout})")


def parse_migration(path: Path) -> Migration:
    m = _NAME.match(path.name)
    if not m:
        raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("-- up", "-- down"):
            current = stripped[3:]
            sections[current] = []
        elif current is None:
            kv = re.match(r"^--\s*([a-z-]+):\s*(\S+)\s*$", stripped)
            if kv:
                header[kv.group(1)] = kv.group(2).lower()
        else:
            sections[current].append(line)
    if "up" not in sections:
        raise MigrationError(f"{path.name}: no '-- up' section")
    return Migration(
        version=int(m.group(1)),
        name=m.group(2),
        checksum=hashlib.sha256(raw).hexdigest(),
        up="\n".join(sections["up"]).strip(),
        down="\n".join(sections.get("down", [])).strip(),
        destructive=header.get("destructive") == "true",
        down_destructive=header.get("down-destructive") == "true",
    )


def load_migrations(dialect: str, directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir(dialect)
    found = sorted((parse_migration(p) for p in directory.glob("*.sql")), key=lambda m: m.version)
    for expected, m in enumerate(found, start=1):
        if m.version != expected:
            raise MigrationError(
                f"migration versions must be 1..n without gaps; found {m.version:04d} where {expected:04d} belongs"
            )
    return found


class Migrator:
    """Plans and applies migrations against one backend."""

    def __init__(self, backend: Backend, directory: Path | None = None):
        self.backend = backend
        self.available = load_migrations(backend.dialect, directory)

    def status(self) -> list[MigrationStatus]:
        applied = {a.version: a for a in self.backend.applied_migrations()}
        out: list[MigrationStatus] = []
        for m in self.available:
            a = applied.pop(m.version, None)
            state: Literal["applied", "pending", "changed", "unknown"]
            if a is None:
                state = "pending"
            elif a.checksum != m.checksum:
                state = "changed"
            else:
                state = "applied"
            out.append(MigrationStatus(m.version, m.name, state, m.destructive, a.applied_at if a else None))
        for a in applied.values():
            out.append(MigrationStatus(a.version, a.name, "unknown", False, a.applied_at))
        return out

    def check(self) -> None:
        """Refuse a database whose applied migrations differ from the shipped files."""
        for s in self.status():
            if s.state == "changed":
                raise MigrationError(
                    f"migration {s.version:04d}_{s.name} was changed after it was applied "
                    "(checksum mismatch); restore the original file"
                )
            if s.state == "unknown":
                raise MigrationError(
                    f"the database has migration {s.version:04d}_{s.name}, which this version of "
                    "eventstore does not know; upgrade eventstore"
                )

    def plan(self) -> list[Migration]:
        self.check()
        done = {a.version for a in self.backend.applied_migrations()}
        return [m for m in self.available if m.version not in done]

    def up(self, *, allow_destructive: bool = False, target: int | None = None) -> list[Migration]:
        """Apply pending migrations in order; stop before a destructive one unless allowed."""
        pending = [m for m in self.plan() if target is None or m.version <= target]
        for m in pending:
            if m.destructive and not allow_destructive:
                raise MigrationError(
                    f"migration {m.version:04d}_{m.name} is destructive; run it with --allow-destructive"
                )
        for m in pending:
            self.backend.apply_migration(m, "up")
        return pending

    def pending_safe(self) -> bool:
        return not any(m.destructive for m in self.plan())

    def down(self, *, allow_destructive: bool = False) -> Migration | None:
        """Roll back the last applied migration."""
        self.check()
        applied = self.backend.applied_migrations()
        if not applied:
            return None
        last = max(applied, key=lambda a: a.version)
        m = self.available[last.version - 1]
        if not m.down:
            raise MigrationError(f"migration {m.version:04d}_{m.name} has no down section")
        if m.down_destructive and not allow_destructive:
            raise MigrationError(f"rolling back {m.version:04d}_{m.name} deletes data; run it with --allow-destructive")
        self.backend.apply_migration(m, "down")
        return m
