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
    ops = summary["operations"]
    assert ops["erase_refused_under_hold"] and ops["pruned_by_policy"] == 3
    assert ops["archive_entries"] == 100 and 0 < ops["archived_payloads_prunable"] <= 100
