"""Read model ``agent_memory``: the current value of each agent's memory entries.

``memory.set`` replaces an entry's value, ``memory.deleted`` removes it; each applies in log
order (the latest wins). The history stays in the log.

Expiry is decided from ``recorded_at`` only, so the rows stay a pure function of the log: the
model's clock is the latest ``recorded_at`` of any memory event so far (``agent_memory_clock``),
and an entry whose ``expires_at`` is at or before that clock is gone. Between memory events an
entry may therefore have expired by the wall clock and still be listed: readers that care filter
``expires_at`` against their own time (docs/events.md, "agent_memory").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore import codec
from eventstore.records import RecordedEvent

from .base import Projection, Tables

COLUMNS = ("agent", "key", "value", "expires_at", "set_at", "position")


class AgentMemory(Projection):
    name = "agent_memory"
    version = 1
    tables = ("agent_memory", "agent_memory_clock")
    personal = True  # values may be personal (catalogue: memory.set's value)
    types = frozenset({"memory.set", "memory.deleted"})
    ddl = """
    CREATE TABLE {agent_memory} (
        agent      TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      {json},
        expires_at TEXT,
        set_at     TEXT NOT NULL,
        position   BIGINT NOT NULL,
        PRIMARY KEY (agent, key)
    );
    CREATE INDEX {agent_memory}_expires ON {agent_memory} (expires_at);
    CREATE TABLE {agent_memory_clock} (
        id    INTEGER PRIMARY KEY,
        clock TEXT NOT NULL
    )
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        got = db.execute("SELECT clock FROM {agent_memory_clock} WHERE id = 1")
        clock: str = got[0][0] if got else ""
        last: dict[tuple[str, str], tuple[Any, ...] | None] = {}  # the latest operation per entry
        for e in events:
            d = e.data
            clock = max(clock, e.recorded_at)
            key = (d["agent"], d["key"])
            if e.type == "memory.deleted":
                last[key] = None
                continue
            value = d.get("value")
            text = None if value is None and "value" in e.erased else codec.encode(value).decode()
            last[key] = (d["agent"], d["key"], text, d.get("expires_at"), e.recorded_at, e.position)
        # Expiry depends only on the final clock: it never goes back, so an entry expired at some
        # event of the batch is expired at its end too (and the batch boundaries do not matter).
        live = [r for r in last.values() if r is not None and (r[3] is None or r[3] > clock)]
        gone = [k for k, r in last.items() if r is None or (r[3] is not None and r[3] <= clock)]
        db.executemany("DELETE FROM {agent_memory} WHERE agent = ? AND key = ?", gone)
        db.upsert("agent_memory", COLUMNS, ("agent", "key"), live)
        db.execute("DELETE FROM {agent_memory} WHERE expires_at <= ?", (clock,))
        db.upsert("agent_memory_clock", ("id", "clock"), ("id",), [(1, clock)])
