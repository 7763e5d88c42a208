"""Read model ``workspaces``: one row per workspace, with its session counts and last access.

A workspace is created, edited and archived by ``workspace.*`` events; sessions name it in the
``workspace`` field of ``session.started`` / ``session.updated``. A workspace that sessions name
but that was never created still gets a row (status ``unknown``), as sessions do: an audit
shows a dangling reference rather than dropping it. Which workspace each session is in is kept
in ``workspace_sessions``, with the same rules as the ``sessions`` model (the first
``session.started`` wins; ``session.updated`` moves the session), so the counts agree with
``sessions.workspace_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore.records import RecordedEvent

from .base import Projection, Tables, json_text
from .sessions import unpruned

COLUMNS = (
    "workspace_id",
    "status",
    "name",
    "path",
    "settings",
    "session_count",
    "live_session_count",
    "created_at",
    "updated_at",
    "archived_at",
    "last_accessed_at",
    "last_position",
)

_MEMBER = ("session_id", "workspace_id", "started", "deleted")


class Workspaces(Projection):
    name = "workspaces"
    version = 2  # 2: a pruned session.started still starts its session (as in sessions)
    tables = ("workspaces", "workspace_sessions")
    types = frozenset(
        {
            "workspace.created",
            "workspace.updated",
            "workspace.archived",
            "session.started",
            "session.updated",
            "session.deleted",
        }
    )
    pruned_types = frozenset({"session.started"})
    ddl = """
    CREATE TABLE {workspaces} (
        workspace_id       TEXT PRIMARY KEY,
        status             TEXT NOT NULL,
        name               TEXT,
        path               TEXT,
        settings           {json},
        session_count      BIGINT NOT NULL,
        live_session_count BIGINT NOT NULL,
        created_at         TEXT,
        updated_at         TEXT,
        archived_at        TEXT,
        last_accessed_at   TEXT NOT NULL,
        last_position      BIGINT NOT NULL
    );
    CREATE INDEX {workspaces}_status ON {workspaces} (status, last_accessed_at);
    CREATE TABLE {workspace_sessions} (
        session_id   TEXT PRIMARY KEY,
        workspace_id TEXT,
        started      INTEGER NOT NULL,
        deleted      INTEGER NOT NULL
    );
    CREATE INDEX {workspace_sessions}_workspace ON {workspace_sessions} (workspace_id)
    """

    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        if any(e.pruned for e in events):  # as the sessions model reads them, so the two agree
            events = [u for e in events if (u := unpruned(e)) is not None]
        sids = sorted({e.data["session_id"] for e in events if e.type.startswith("session.")})
        members: dict[str, dict[str, Any]] = {
            r[0]: dict(zip(_MEMBER, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(_MEMBER) + " FROM {workspace_sessions} WHERE session_id IN ({keys})", sids
            )
        }
        wids = {e.data["workspace_id"] for e in events if e.type.startswith("workspace.")}
        wids |= {e.data["workspace"] for e in events if e.data.get("workspace") is not None}
        wids |= {m["workspace_id"] for m in members.values() if m["workspace_id"] is not None}
        rows: dict[str, dict[str, Any]] = {
            r[0]: dict(zip(COLUMNS, r))
            for r in db.fetch_by_keys(
                "SELECT " + ", ".join(COLUMNS) + " FROM {workspaces} WHERE workspace_id IN ({keys})", sorted(wids)
            )
        }

        def row(wid: str, e: RecordedEvent) -> dict[str, Any]:
            """The workspace's row, made on its first reference; the event touches it."""
            r = rows.get(wid)
            if r is None:
                r = rows[wid] = {c: None for c in COLUMNS} | {
                    "workspace_id": wid,
                    "status": "unknown",
                    "session_count": 0,
                    "live_session_count": 0,
                }
            r["last_accessed_at"] = e.recorded_at
            r["last_position"] = e.position
            return r

        def count(wid: str | None, deleted: int, by: int) -> None:
            if wid is not None:
                rows[wid]["session_count"] += by
                rows[wid]["live_session_count"] += 0 if deleted else by

        changed: set[str] = set()
        for e in events:
            d, t = e.data, e.type
            if t.startswith("session."):
                sid = d["session_id"]
                m = members.get(sid)
                if m is None:
                    m = members[sid] = {"session_id": sid, "workspace_id": None, "started": 0, "deleted": 0}
                wid = d.get("workspace")
                if t == "session.deleted":
                    if not m["deleted"]:
                        m["deleted"] = 1
                        if m["workspace_id"] is not None:
                            rows[m["workspace_id"]]["live_session_count"] -= 1
                        changed.add(sid)
                    continue
                if t == "session.started":
                    if m["started"]:  # a repeated session.started changes nothing (the first wins)
                        continue
                    m["started"] = 1
                    changed.add(sid)
                if wid is None:
                    continue
                row(wid, e)
                if wid != m["workspace_id"]:
                    count(m["workspace_id"], m["deleted"], -1)
                    m["workspace_id"] = wid
                    count(wid, m["deleted"], 1)
                    changed.add(sid)
                continue
            r = row(d["workspace_id"], e)
            if t == "workspace.created":
                if r["created_at"] is not None:  # a repeated workspace.created: the first wins
                    continue
                r["created_at"] = e.recorded_at
                if r["status"] == "unknown":
                    r["status"] = "active"
            elif t == "workspace.archived":
                if r["archived_at"] is None:  # the first archive wins
                    r["archived_at"] = e.recorded_at
                    r["status"] = "archived"
                continue
            for f in ("name", "path"):
                if d.get(f) is not None:
                    r[f] = d[f]
            if d.get("settings") is not None:
                r["settings"] = json_text(d["settings"])
            r["updated_at"] = e.recorded_at
        db.upsert(
            "workspace_sessions", _MEMBER, ("session_id",), [tuple(members[s][c] for c in _MEMBER) for s in changed]
        )
        db.upsert("workspaces", COLUMNS, ("workspace_id",), [tuple(r[c] for c in COLUMNS) for r in rows.values()])
