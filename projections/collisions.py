"""Read model ``collisions``: one row per ``collision.detected`` (parallel agents' races).

A collision with a ``collision_id`` is named by it: a repeated one (an agent's retry) changes
nothing, the first wins. One without is its own evidence, keyed by its log position. Those
the store records for refused appends (``append(..., record_conflicts=True)``, kind
``expected_version``, stream ``conflicts``) carry the stream and both versions.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventstore.records import RecordedEvent

from .base import Projection, Tables, json_text

COLUMNS = (
    "collision_key",
    "collision_id",
    "session_id",
    "resource",
    "kind",
    "resolution",
    "agents",
    "agent_count",
    "stream_id",
    "expected_version",
    "actual_version",
    "recorded_at",
    "position",
)


class Collisions(Projection):
    name = "collisions"
    version = 1
    tables = ("collisions",)
    types = frozenset({"collision.detected"})
    ddl = """
    CREATE TABLE {collisions} (
        collision_key    TEXT PRIMARY KEY,
        collision_id     TEXT,
        session_id       TEXT,
        resource         TEXT NOT NULL,
        kind             TEXT NOT NULL,
        resolution       TEXT,
        agents           TEXT NOT NULL,
        agent_count      BIGINT NOT NULL,
        stream_id        TEXT,
        expected_version BIGINT,
        actual_version   BIGINT,
        recorded_at      TEXT NOT NULL,
        position         BIGINT NOT NULL
    );
    CREATE INDEX {collisions}_session ON {collisions} (session_id, position);
    CREATE INDEX {collisions}_resource ON {collisions} (resource, position);
    CREATE INDEX {collisions}_time ON {collisions} (recorded_at)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        rows: dict[str, tuple[object, ...]] = {}
        for e in events:
            d = e.data
            cid = d.get("collision_id")
            # '#' never starts a key of an event without an id, so the two kinds of key never meet.
            key = f"id:{cid}" if cid else f"#{e.position}"
            if key in rows:
                continue  # a repeated collision_id in this batch: the first wins
            agents = list(d.get("agents") or [])
            rows[key] = (
                key,
                cid,
                d.get("session_id"),
                d["resource"],
                d["kind"],
                d.get("resolution"),
                json_text(agents),
                len(set(agents)),
                d.get("stream_id"),
                d.get("expected_version"),
                d.get("actual_version"),
                e.recorded_at,
                e.position,
            )
        db.executemany(
            f"INSERT INTO {{collisions}} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
            "ON CONFLICT (collision_key) DO NOTHING",
            rows.values(),
        )
