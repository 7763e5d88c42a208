"""``eventstore demo`` shows the ingest service too: agent processes append over HTTP with their
own credentials, the principal lands in the metadata, an auditor checks a receipt and a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventstore import EventStore


@pytest.mark.slow
def test_demo_json_shows_the_service_and_keeps_its_keys(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from eventstore.cli import main; main()",
            "--db",
            str(db),
            "demo",
            "--agents",
            "2",
            "--sessions",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert {"demo", "verify", "types", "read_models", "audit", "service"} <= set(summary)
    assert summary["verify"]["ok"] and summary["audit"]["receipt_ok"]
    service = summary["service"]
    assert service["agents"] == 2 and service["events"] == 8
    assert service["principals"] == {"agent-1": ["agent-1"], "agent-2": ["agent-2"]}
    assert service["receipt_ok"] and service["tlog_proof_ok"] and service["refused_outside_patterns"]
    with EventStore.open(str(db)) as store:
        assert [e.metadata["principal"] for e in store.read_stream("agent-2/session-1")] == ["agent-2"] * 4
        assert store.stream_version("agent-1/session-1") == 4  # the refused write to agent-2's stream left nothing
        creds = [(e.type, e.data["name"]) for e in store.read_stream("credentials")]
        assert creds[:3] == [("credential.created", n) for n in ("agent-1", "agent-2", "auditor")]
        assert [t for t, _ in creds[3:]] == ["credential.created", "credential.revoked"]  # the operator's contractor
        types = {r[0] for r in store.backend.query("SELECT DISTINCT type FROM events")}
        from eventstore.catalogue import AGENTS

        assert set(AGENTS.schemas) - types == {"store.restored"}  # every type but a restore's
        assert summary["service"]["checkpoint_size"] <= store.head()[0]
        _assert_retries_counted_once(store)
    ops = summary["operations"]
    assert ops["erase_refused_under_hold"] and ops["pruned_by_policy"] == 3
    assert ops["archive_entries"] == 100 and 0 < ops["archived_payloads_prunable"] <= 100


RETRIED = {  # type -> the fields naming its identity
    "session.started": ("session_id",),
    "message.appended": ("session_id", "message_id"),
    "tool.started": ("session_id", "execution_id"),
    "tool.finished": ("session_id", "execution_id"),
    "execution.started": ("execution_id",),
    "execution.finished": ("execution_id",),
    "collision.detected": ("collision_id",),
    "workspace.created": ("workspace_id",),
    "workspace.archived": ("workspace_id",),
    "instance.started": ("session_id", "instance_id"),
    "instance.finished": ("session_id", "instance_id"),
}


def _assert_retries_counted_once(store: EventStore) -> None:
    """The demo re-sends an event of every id-bearing type; the read models count each id once."""
    seen: dict[str, list[tuple[object, ...]]] = {t: [] for t in RETRIED}
    first_content: dict[tuple[object, ...], object] = {}
    resent_differently = 0
    for e in store.read_all():
        if e.type in RETRIED and e.data is not None and e.data.get(RETRIED[e.type][-1]) is not None:
            key = tuple(e.data[f] for f in RETRIED[e.type])  # (a collision without an id is no identity)
            seen[e.type].append(key)
            if e.type == "message.appended":
                if key in first_content and first_content[key] != e.data["content"]:
                    resent_differently += 1
                first_content.setdefault(key, e.data["content"])
    retried = {t for t, keys in seen.items() if len(set(keys)) < len(keys)}
    assert retried == set(RETRIED), set(RETRIED) - retried
    assert resent_differently > 0
    q = store.backend.query
    messages = set(seen["message.appended"])
    assert q("SELECT sum(message_count) FROM sessions")[0][0] == len(messages)
    assert q("SELECT count(*) FROM messages")[0][0] == len(messages)
    assert q("SELECT sum(tool_calls) FROM sessions")[0][0] == len(set(seen["tool.started"]))
    assert q("SELECT count(*) FROM executions")[0][0] == len(set(seen["execution.started"]))
    assert q("SELECT count(*) FROM collisions WHERE collision_id IS NOT NULL")[0][0] == len(
        set(seen["collision.detected"])
    )
    assert q("SELECT count(*) FROM instances")[0][0] == len(set(seen["instance.started"]))
    # first wins: a message re-sent with other content keeps the first content
    rows = {(s, m): c for s, m, c in q("SELECT session_id, message_id, content FROM messages")}
    assert all(rows[k] == c for k, c in first_content.items() if c is not None)
