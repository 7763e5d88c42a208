"""View ``session_complete``: a session with its workspace, instance count, message count and
runtime mix, as the Rust session store's view of that name gave it (docs/projections.md).

It reads the public names of three read models (``sessions``, ``workspaces``, ``instances``),
so a rebuild of any of them swaps it along (``projections.base.View``).
"""

from __future__ import annotations

from .base import View

_COLUMNS = """
    s.session_id, s.name, s.kind, s.status, s.model, s.workspace_id,
    w.name AS workspace_name, w.path AS workspace_path, w.status AS workspace_status,
    s.message_count, s.tokens_used,
    (SELECT count(*) FROM instances i WHERE i.session_id = s.session_id) AS instance_count,
"""
_FROM = """
FROM sessions s LEFT JOIN workspaces w ON w.workspace_id = s.workspace_id
"""
_TAIL = ", s.started_at, s.completed_at, s.deleted_at"

SESSION_COMPLETE = View(
    "session_complete",
    ("sessions", "workspaces", "instances"),
    # runtimes: "runtime:instances" per runtime, sorted by runtime ("claude-code:2,codex:1")
    "SELECT"
    + _COLUMNS
    + """    (SELECT group_concat(runtime || ':' || n, ',') FROM (
        SELECT runtime, count(*) AS n FROM instances r
        WHERE r.session_id = s.session_id AND runtime IS NOT NULL GROUP BY runtime ORDER BY runtime
    ) AS m) AS runtimes"""
    + _TAIL
    + _FROM,
    postgres="SELECT"
    + _COLUMNS
    + """    (SELECT string_agg(runtime || ':' || n, ',' ORDER BY runtime) FROM (
        SELECT runtime, count(*) AS n FROM instances r
        WHERE r.session_id = s.session_id AND runtime IS NOT NULL GROUP BY runtime
    ) AS m) AS runtimes"""
    + _TAIL
    + _FROM,
)
