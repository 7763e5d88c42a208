"""JSON in the read models and in the log: ``jsonb`` columns with GIN indexes on PostgreSQL, the
same JSON text read back on both backends, and the documented query over ``events.data``
(docs/postgres.md, "JSON queries")."""

from __future__ import annotations

import json
from pathlib import Path

from eventstore import EventStore, NewEvent
from projections import Runner, run_all


def _events(store: EventStore) -> None:
    store.append(
        "s1",
        [
            NewEvent(
                type="session.started", data={"session_id": "s1", "settings": {"temperature": 0.2, "tools": ["sh"]}}
            ),
            NewEvent(
                type="tool.started",
                data={"session_id": "s1", "execution_id": "e1", "tool_name": "read", "input": {"path": "/etc/hosts"}},
            ),
            NewEvent(
                type="tool.started",
                data={"session_id": "s1", "execution_id": "e2", "tool_name": "read", "input": {"path": "/tmp/x"}},
            ),
            NewEvent(
                type="tool.finished",
                data={"session_id": "s1", "execution_id": "e1", "status": "completed", "output": {"bytes": 12}},
            ),
        ],
    )
    store.append("s2", [NewEvent(type="session.started", data={"session_id": "s2"})])


def test_json_columns_read_back_as_json_text_and_rebuild_alike(store: EventStore) -> None:
    _events(store)
    run_all(store)
    q = store.backend.query
    (settings,) = q("SELECT settings FROM sessions WHERE session_id = 's1'")[0]
    assert settings == '{"temperature":0.2,"tools":["sh"]}'  # canonical JSON text on both backends
    rows = q("SELECT execution_id, input, output FROM tool_executions ORDER BY execution_id")
    assert [(r[0], json.loads(r[1]), r[2] and json.loads(r[2])) for r in rows] == [
        ("e1", {"path": "/etc/hosts"}, {"bytes": 12}),
        ("e2", {"path": "/tmp/x"}, None),
    ]
    store.append(  # a later batch reads the row back and writes it again
        "s1", [NewEvent(type="session.updated", data={"session_id": "s1", "name": "renamed"})]
    )
    run_all(store)
    assert q("SELECT settings, name FROM sessions WHERE session_id = 's1'")[0] == (settings, "renamed")
    before = sorted(q("SELECT * FROM tool_executions"), key=repr), sorted(q("SELECT * FROM sessions"), key=repr)
    runner = Runner(store)
    runner.rebuild_many(["sessions", "tool_executions"])
    runner.release()
    after = sorted(q("SELECT * FROM tool_executions"), key=repr), sorted(q("SELECT * FROM sessions"), key=repr)
    assert after == before


def test_postgres_json_columns_are_jsonb_with_gin_indexes(store: EventStore) -> None:
    _events(store)
    run_all(store)
    backend = store.backend
    if backend.dialect != "postgres":
        assert store.backend.query(
            "SELECT count(*) FROM tool_executions WHERE json_extract(input, '$.path') = '/tmp/x'"
        ) == [(1,)]
        return
    types = dict(
        backend.query(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE (column_name IN ('settings', 'input', 'output') OR (table_name LIKE 'agent\\_memory\\_\\_g%' "
            "AND column_name = 'value')) AND table_name LIKE '%\\_\\_g%'"
        )
    )
    assert set(types.values()) == {"jsonb"}, types
    assert {k.split("__")[0] + "." + k.split(".")[1] for k in types} == {
        "sessions.settings",
        "tool_executions.input",
        "tool_executions.output",
        "workspaces.settings",
        "agent_memory.value",
    }, types
    containment = 'SELECT execution_id FROM tool_executions WHERE input @> \'{"path": "/tmp/x"}\''
    assert backend.query(containment) == [("e2",)]
    with backend.transaction() as tx:
        tx.execute("SET LOCAL enable_seqscan = off")
        plan = " ".join(r[0] for r in tx.execute("EXPLAIN " + containment))
        assert "tool_executions__g1_input" in plan, plan
        plan = " ".join(
            r[0] for r in tx.execute('EXPLAIN SELECT session_id FROM sessions WHERE settings @> \'{"tools": ["sh"]}\'')
        )
        assert "sessions__g1_settings" in plan, plan
    assert backend.query('SELECT session_id FROM sessions WHERE settings @> \'{"tools": ["sh"]}\'') == [("s1",)]


def _documented_query() -> str:
    """The query of docs/postgres.md, "JSON queries", as written (its session id a parameter)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "postgres.md").read_text()
    block = text[text.index("The log itself stores") :].split("```sql\n")[1].split("\n```")[0]
    return block.replace("'42'", "?").rstrip(";")


LOG_QUERY = {
    "postgres": _documented_query(),
    "sqlite": "SELECT position, json_extract(CAST(data AS TEXT), '$.tool_name') FROM events "
    "WHERE type = 'tool.started' AND json_extract(CAST(data AS TEXT), '$.session_id') = ? ORDER BY position",
}


def test_the_documented_json_query_over_the_log(store: EventStore) -> None:
    _events(store)
    rows = store.backend.query(LOG_QUERY[store.backend.dialect], ("s1",))
    assert rows == [(2, "read"), (3, "read")]
