"""PostgreSQL: an append's cost must not grow with the length of the streams it appends to.

The append transaction reads each stream's current version. Asked as ``max(version) ... WHERE
stream_id = ANY(...) GROUP BY``, PostgreSQL read every version of those streams (a bitmap scan of
all their rows): appends to a stream of 48,000 events spent 15 ms there. Asked per stream with
``ORDER BY version DESC LIMIT 1``, it is one backward step of the (stream_id, version) index.
"""

from __future__ import annotations

import pytest

from eventstore import EventStore, NewEvent
from eventstore.backends.postgres import _VERSIONS


def test_stream_versions_are_read_from_the_index_not_by_scanning_the_streams(store: EventStore) -> None:
    if store.backend.dialect != "postgres":
        pytest.skip("PostgreSQL's plan (SQLite's statement is a different one)")
    for i in range(20):
        store.append_many(
            [(f"long/{k}", [NewEvent(type="note", data={"i": i}) for _ in range(25)], None) for k in range(4)]
        )
    with store.backend.transaction() as tx:
        tx.execute("ANALYZE events")
    ids = [f"long/{k}" for k in range(4)] + ["never-written"]
    versions = _VERSIONS.replace("%s", "?")  # the backend's query() takes '?' placeholders
    plan = "\n".join(r[0] for r in store.backend.query("EXPLAIN (ANALYZE, COSTS OFF) " + versions, (ids,)))
    assert "Backward using events_stream_version" in plan, plan
    assert "rows=1 loops=" in plan and "Bitmap Heap Scan" not in plan, plan  # one row read per stream
    rows = dict(store.backend.query(versions, (ids,)))
    assert rows == {"long/0": 500, "long/1": 500, "long/2": 500, "long/3": 500, "never-written": None}
