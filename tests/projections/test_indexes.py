"""The read models' queries that the systems moving to eventstore ran answer from an index.

SQLite: ``EXPLAIN QUERY PLAN`` names the index. PostgreSQL: the plan with sequential scans
disabled (tiny test tables would otherwise be scanned) uses an index scan on it.
"""

from __future__ import annotations

from eventstore import EventStore, NewEvent
from projections import run_all

QUERIES = [
    ("SELECT * FROM sessions WHERE status = 'active' ORDER BY started_at DESC LIMIT 50", "sessions__g1_status"),
    ("SELECT * FROM sessions WHERE kind = 'debate' ORDER BY started_at DESC LIMIT 50", "sessions__g1_kind"),
    ("SELECT * FROM sessions WHERE started_at >= '2026-01-01' AND started_at < '2026-02-01'", "sessions__g1_started"),
    ("SELECT * FROM sessions WHERE workspace_id = 'w1' ORDER BY started_at DESC", "sessions__g1_workspace"),
    ("SELECT count(*) FROM sessions WHERE deleted_at IS NULL", "sessions__g1_live"),
    ("SELECT * FROM messages WHERE session_id = 's1' ORDER BY position", "messages__g1_session"),
    (  # a session's messages in a time range: position order is time order (docs/projections.md)
        "SELECT * FROM messages WHERE session_id = 's1' AND recorded_at >= '2026-01-01' ORDER BY position",
        "messages__g1_session",
    ),
    ("SELECT * FROM messages WHERE recorded_at >= '2026-01-01' ORDER BY recorded_at LIMIT 100", "messages__g1_time"),
]


def test_queries_use_their_indexes(store: EventStore) -> None:
    store.append("s", [NewEvent(type="session.started", data={"session_id": "s1", "kind": "debate"})])
    store.append(
        "s",
        [
            NewEvent(
                type="message.appended",
                data={"session_id": "s1", "message_id": f"m{i}", "role": "user", "content": "x"},
            )
            for i in range(20)
        ],
    )
    run_all(store)
    backend = store.backend
    for sql, index in QUERIES:
        if backend.dialect == "sqlite":
            plan = " | ".join(str(r[-1]) for r in backend.query("EXPLAIN QUERY PLAN " + sql))
            assert f"INDEX {index} " in plan + " ", (sql, plan)
        else:
            with backend.transaction() as tx:
                tx.execute("SET LOCAL enable_seqscan = off")
                plan = " | ".join(r[0] for r in tx.execute("EXPLAIN " + sql))
            assert index in plan, (sql, plan)
