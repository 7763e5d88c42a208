"""Read model ``agents``: per agent, what it wrote; and ``agent_events``, the audit index by agent and time.

An event's agent is the writing credential's ``metadata.principal`` when present (the service
sets it; a client cannot), else ``metadata.agent_id``; events with neither belong to no agent.
``events`` counts log entries (a retry is an entry too); ``messages``, ``tokens_used``,
``tool_calls`` and ``tool_failures`` count identities as ``sessions`` does (the first
occurrence of a session's ``message_id`` or ``execution_id`` counts, for the agent that wrote
it; docs/events.md, "Repeated events"); ``sessions`` counts distinct sessions the agent wrote
about. ``agent_events(agent, recorded_at, position)`` has an index on those columns, so
``agent_activity`` answers "what did agent A do between T1 and T2" without a scan of the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore import EventStore
from eventstore.errors import UserError
from eventstore.records import RecordedEvent, agent_of

from .base import Projection, Tables

COLUMNS = (
    "agent",
    "events",
    "sessions",
    "messages",
    "tokens_used",
    "tool_calls",
    "tool_failures",
    "first_seen",
    "last_seen",
    "first_position",
    "last_position",
)

_ITEM_KIND = {"message.appended": "m", "tool.started": "s", "tool.finished": "f"}


class Agents(Projection):
    name = "agents"
    version = 2  # 2: tool_calls counts a call seen only by its tool.finished
    tables = ("agents", "agent_events", "agent_sessions", "agent_items")
    ddl = """
    CREATE TABLE {agents} (
        agent          TEXT PRIMARY KEY,
        events         BIGINT NOT NULL,
        sessions       BIGINT NOT NULL,
        messages       BIGINT NOT NULL,
        tokens_used    BIGINT NOT NULL,
        tool_calls     BIGINT NOT NULL,
        tool_failures  BIGINT NOT NULL,
        first_seen     TEXT NOT NULL,
        last_seen      TEXT NOT NULL,
        first_position BIGINT NOT NULL,
        last_position  BIGINT NOT NULL
    );
    CREATE TABLE {agent_events} (
        agent       TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        position    BIGINT NOT NULL,
        PRIMARY KEY (agent, recorded_at, position)
    ) {keyed};
    CREATE TABLE {agent_sessions} (
        session_id TEXT NOT NULL,
        agent      TEXT NOT NULL,
        PRIMARY KEY (session_id, agent)
    ) {keyed};
    CREATE TABLE {agent_items} (
        item_id    TEXT NOT NULL,
        kind       TEXT NOT NULL,
        session_id TEXT NOT NULL,
        PRIMARY KEY (item_id, kind, session_id)
    ) {keyed}
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        mine = [(a, e) for e in events if (a := agent_of(e.metadata)) is not None]
        if not mine:
            return
        names = sorted({a for a, _ in mine})
        rows: dict[str, dict[str, Any]] = {
            r[0]: dict(zip(COLUMNS, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(COLUMNS) + " FROM {agents} WHERE agent IN ({keys})", names, chunk=2000
            )
        }
        session_ids = sorted({s for _, e in mine if type(s := e.data.get("session_id")) is str})
        pairs = {
            (r[0], r[1])
            for r in db.fetch_by_keys(
                "SELECT session_id, agent FROM {agent_sessions} WHERE session_id IN ({keys})", session_ids, chunk=2000
            )
        }
        seen = self._seen(mine, db)
        new_pairs: list[tuple[str, str]] = []
        new_items: list[tuple[str, str, str]] = []
        index: list[tuple[str, str, int]] = []
        for agent, e in mine:
            row = rows.get(agent)
            if row is None:
                row = rows[agent] = dict.fromkeys(COLUMNS, 0) | {
                    "agent": agent,
                    "first_seen": e.recorded_at,
                    "first_position": e.position,
                }
            row["events"] += 1
            row["last_seen"] = e.recorded_at
            row["last_position"] = e.position
            index.append((agent, e.recorded_at, e.position))
            d = e.data
            sid = d.get("session_id")
            if type(sid) is not str:
                continue
            if (sid, agent) not in pairs:
                pairs.add((sid, agent))
                new_pairs.append((sid, agent))
                row["sessions"] += 1
            kind = _ITEM_KIND.get(e.type)
            if kind is None:
                continue
            item = (kind, d["message_id"] if kind == "m" else d["execution_id"], sid)
            if item in seen:
                continue  # a retry: counted once, for the agent of the first occurrence
            seen.add(item)
            new_items.append(item)
            if kind == "m":
                row["messages"] += 1
                row["tokens_used"] += d.get("tokens_used") or 0
            else:  # a call counts once, by its start or by a finish seen without one (as in sessions)
                if ("f" if kind == "s" else "s", item[1], sid) not in seen:
                    row["tool_calls"] += 1
                if kind == "f" and d["status"] != "completed":
                    row["tool_failures"] += 1
        db.executemany("INSERT INTO {agent_events} (agent, recorded_at, position) VALUES (?, ?, ?)", index)
        db.executemany("INSERT INTO {agent_sessions} (session_id, agent) VALUES (?, ?)", new_pairs)
        db.executemany("INSERT INTO {agent_items} (kind, item_id, session_id) VALUES (?, ?, ?)", new_items)
        db.upsert("agents", COLUMNS, ("agent",), [tuple(r[c] for c in COLUMNS) for r in rows.values()])

    @staticmethod
    def _seen(mine: list[tuple[str, RecordedEvent]], db: Tables) -> set[tuple[str, str, str]]:
        """The (kind, id, session) items of this batch that earlier batches already counted
        (one lookup per chunk of ids, whatever their kind: fewer round trips in a rebuild)."""
        wanted: set[str] = set()
        for _, e in mine:
            kind = _ITEM_KIND.get(e.type)
            if kind is not None and type(e.data.get("session_id")) is str:
                wanted.add(e.data["message_id" if kind == "m" else "execution_id"])
        rows = db.fetch_by_keys(
            "SELECT kind, item_id, session_id FROM {agent_items} WHERE item_id IN ({keys})", sorted(wanted), chunk=2000
        )
        return {(r[0], r[1], r[2]) for r in rows}


def _bound(value: str | None, what: str) -> str | None:
    """A time bound in the store's clock format (a date, or an ISO time with zone; UTC assumed)."""
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserError(
            f"{what} {value!r} is not an ISO date or time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


ACTIVITY_SQL = (
    "SELECT position FROM agent_events WHERE agent = ? AND recorded_at >= ? AND recorded_at < ? "
    "ORDER BY recorded_at, position LIMIT ?"
)
"""The audit lookup: answered from the ``agent_events`` index (tests check the query plan)."""


def agent_activity(
    store: EventStore, agent: str, *, since: str | None = None, until: str | None = None, limit: int = 1000
) -> list[RecordedEvent]:
    """The events attributed to ``agent`` recorded in [``since``, ``until``), oldest first, at most ``limit``.

    Answered from the ``agents`` read model's index, then each event read from the log by its
    position: as complete as the read model's checkpoint (``eventstore project run`` catches it up).
    """
    if not isinstance(agent, str) or not agent:
        raise UserError("agent must be a non-empty string")
    if limit < 1:
        raise UserError(f"limit must be at least 1, not {limit}")
    _require(store)
    lo = _bound(since, "since") or ""
    hi = _bound(until, "until") or "9999"
    positions = [r[0] for r in store.backend.query(ACTIVITY_SQL, (agent, lo, hi, limit))]
    out: list[RecordedEvent] = []
    for p in positions:
        out += list(store.read_all(p, to_position=p, batch_size=1))
    return out


def _require(store: EventStore) -> None:
    if not store.backend.query("SELECT 1 FROM projection_state WHERE name = 'agents' AND active = 1"):
        raise UserError("the 'agents' read model has not been built yet: run 'eventstore project run'")


def agent_rows(store: EventStore) -> list[dict[str, Any]]:
    """Every row of ``agents``, by agent name."""
    _require(store)
    return [
        dict(zip(COLUMNS, r))
        for r in store.backend.query("SELECT " + ", ".join(COLUMNS) + " FROM agents ORDER BY agent")
    ]


__all__ = ["ACTIVITY_SQL", "Agents", "agent_activity", "agent_of", "agent_rows"]
