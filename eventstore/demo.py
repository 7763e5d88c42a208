"""The demo: simulated agents (separate processes) append realistic events concurrently.

Each agent runs sessions: a session starts, user and assistant messages alternate,
the assistant calls tools (some fail or time out and are retried), and latency
metrics are recorded. Every id-bearing event type is also sent again, as an agent that missed
its acknowledgement would (one message re-sent with other content: the first wins), so the
read models' counts show that retries count once. An operator defines SLOs. Afterwards the chain is verified.
Everything is deterministic per seed except the interleaving of the processes.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from .errors import EventStoreError, WrongExpectedVersion
from .records import NewEvent
from .store import EventStore

TOOLS = ["web_search", "read_file", "run_tests", "sql_query", "send_email"]
MODELS = ["claude-sonnet", "gpt-large", "llama-70b"]
SLOS = [
    {
        "slo_id": "llm-latency-p95",
        "metric": "llm.latency_ms",
        "objective": "p95",
        "threshold": 2200.0,
        "severity": "warning",
        "window": 100,
    },
    {
        "slo_id": "tool-latency-max",
        "metric": "tool.duration_ms",
        "objective": "max",
        "threshold": 8000.0,
        "severity": "critical",
        "window": 100,
    },
]

# executions, collisions, agents
SLOS += [
    {
        "slo_id": "pipeline-stage-max",
        "metric": "pipeline.stage_ms",
        "objective": "max",
        "threshold": 3000.0,
        "severity": "warning",
        "window": 20,
    }
]
STAGES = ["plan", "edit", "test"]


class DemoResult(msgspec.Struct, kw_only=True):
    agents: int
    sessions: int
    events: int
    seconds: float
    events_per_second: float


def _agent(url: str, agent: int, sessions: int, seed: int, prefix: str = "") -> int:
    """One simulated agent process; returns how many events it appended."""
    rng = random.Random(seed * 1000 + agent)
    appended = 0
    with EventStore.open(url, migrate=False) as store:
        workspace = f"{prefix}ws-agent{agent}"  # workspaces, instances, memory
        appended += _workspace(store, workspace, agent)
        for s in range(sessions):
            sid = f"{prefix}agent{agent}-s{s}"
            stream = f"session-{sid}"
            meta = {"agent_id": f"agent-{agent}", "correlation_id": sid}
            model = rng.choice(MODELS)
            version = 0

            def emit(type_: str, data: dict[str, Any], stream: str = stream, meta: dict[str, str] = meta) -> None:
                nonlocal version, appended
                store.append(stream, [NewEvent(type=type_, data=data, metadata=meta)], expected_version=version)
                version += 1
                appended += 1

            started = {
                "session_id": sid,
                "name": f"task {s} of agent {agent}",
                "task": "triage",
                "kind": "chat",
                "model": model,
                "temperature": 0.2,
                "max_tokens": 4096,
                "workspace": workspace,
            }
            emit("session.started", started)
            if s == 0:
                emit("session.started", started)  # an agent's retry: the first wins
            # workspaces, instances, memory: the session's agent instances start (one start is retried)
            runtimes = [rng.choice(RUNTIMES) for _ in range(rng.randint(1, 3))]
            for n, runtime in enumerate(runtimes):
                emit("instance.started", _instance(sid, n, agent, runtime, rng.choice(MODELS)))
            emit("instance.started", _instance(sid, 0, agent, runtimes[0], model))  # first one wins
            for turn in range(rng.randint(2, 5)):
                asked = {
                    "session_id": sid,
                    "message_id": f"{sid}-u{turn}",
                    "role": "user",
                    "content": f"Please look into ticket #{rng.randint(100, 999)}.",
                }
                emit("message.appended", asked)
                if turn == 0:  # retries: an exact copy, then one re-rendered differently (the first wins)
                    emit("message.appended", asked)
                    emit("message.appended", asked | {"content": asked["content"] + " (resent)"})
                if rng.random() < 0.6 or turn == 0:  # the first turn always calls a tool
                    tool = rng.choice(TOOLS)
                    ex = f"{sid}-x{turn}"
                    call = {
                        "session_id": sid,
                        "execution_id": ex,
                        "tool_name": tool,
                        "input": {"query": f"q{turn}"},
                        "message_id": f"{sid}-u{turn}",
                    }
                    emit("tool.started", call)
                    if turn == 0:
                        emit("tool.started", call)  # a retry: counted once in tool_calls
                    roll = rng.random()
                    status = "completed" if roll < 0.8 else ("failed" if roll < 0.93 else "timeout")
                    duration = round(rng.lognormvariate(6.0, 0.9), 1)
                    finished = {
                        "session_id": sid,
                        "execution_id": ex,
                        "status": status,
                        "output": {"rows": rng.randint(0, 50)} if status == "completed" else None,
                        "error": None if status == "completed" else f"{tool} {status}",
                        "duration_ms": duration,
                        "retry_count": rng.randint(0, 2),
                    }
                    emit("tool.finished", finished)
                    if turn == 0:
                        emit("tool.finished", finished)  # a retry: a failure counts once
                    emit(
                        "metric.recorded",
                        {
                            "metric": "tool.duration_ms",
                            "value": duration,
                            "session_id": sid,
                            "stage": tool,
                            "unit": "ms",
                        },
                    )
                latency = round(rng.lognormvariate(7.0, 0.5), 1)
                tokens = rng.randint(50, 900)
                emit(
                    "message.appended",
                    {
                        "session_id": sid,
                        "message_id": f"{sid}-a{turn}",
                        "role": "assistant",
                        "content": "Here is what I found.",
                        "model": model,
                        "tokens_used": tokens,
                        "finish_reason": "stop",
                    },
                )
                emit(
                    "metric.recorded",
                    {
                        "metric": "llm.latency_ms",
                        "value": latency,
                        "session_id": sid,
                        "stage": "generate",
                        "unit": "ms",
                    },
                )
            extra = _pipeline(store, rng, stream, sid, agent, s, meta, emit)  # executions, collisions, agents
            appended += extra  # (after the call: emit counts its own events in appended)
            # workspaces, instances, memory: instances finish (one finish is retried); the agent remembers
            for n in range(len(runtimes)):
                done = rng.random() < 0.8
                emit(
                    "instance.finished",
                    {
                        "session_id": sid,
                        "instance_id": f"{sid}-i{n}",
                        "status": "completed" if done else "failed",
                        "files_changed": rng.randint(1, 9) if done else 0,
                        "lines_added": rng.randint(5, 400) if done else 0,
                        "lines_removed": rng.randint(0, 120) if done else 0,
                        "error": None if done else "tests failed",
                    },
                )
                if n == 0:
                    emit("instance.finished", {"session_id": sid, "instance_id": f"{sid}-i0", "status": "cancelled"})
            for data in _memories(f"agent-{agent}", sid, s):
                kind = "memory.set" if "value" in data else "memory.deleted"
                store.append(f"memory-{prefix}agent{agent}", [NewEvent(type=kind, data=data, metadata=meta)])
                appended += 1
            final = "completed" if rng.random() < 0.85 else "failed"
            emit(
                "session.status_changed",
                {"session_id": sid, "status": final, "reason": None if final == "completed" else "tool errors"},
            )
            if s == sessions - 1:  # an edit after the fact: renamed
                emit("session.updated", {"session_id": sid, "name": f"task {s} of agent {agent} (reviewed)"})
            if s == sessions - 1 and agent % 2 == 1:  # soft delete, retried: the row stays, marked
                emit("session.deleted", {"session_id": sid, "reason": "duplicate task"})
                emit("session.deleted", {"session_id": sid, "reason": "duplicate task"})
    return appended


# executions, collisions, agents
def _pipeline(
    store: EventStore,
    rng: random.Random,
    stream: str,
    sid: str,
    agent: int,
    s: int,
    meta: dict[str, str],
    emit: Callable[[str, dict[str, Any]], None],
) -> int:
    """A pipeline execution of the session (its start sent twice: a retry), per-stage timings,
    sometimes a collision with another agent; agent 0's first session also makes a stale append
    that the store refuses and records (``record_conflicts``). Returns the events appended
    outside ``emit``."""
    ex = f"{sid}-run"
    started = {"execution_id": ex, "workflow": "fix-ticket", "kind": "pipeline", "session_id": sid}
    emit("execution.started", started)
    emit("execution.started", started)  # an agent's retry: counted once
    total = 0.0
    for stage in STAGES:
        ms = round(rng.lognormvariate(6.5, 0.8), 1)
        total += ms
        emit(
            "metric.recorded",
            {"metric": "pipeline.stage_ms", "value": ms, "stage": stage, "execution_id": ex, "unit": "ms"},
        )
    outcome = "succeeded" if rng.random() < 0.8 else "failed"
    finished = {"execution_id": ex, "outcome": outcome, "duration_ms": round(total, 1)}
    emit("execution.finished", finished)
    if s == 0:
        emit("execution.finished", finished)  # a retry: the first outcome stays
    if rng.random() < 0.3 or s == 0:
        collision = {
            "resource": f"file:src/module{rng.randint(0, 3)}.py",
            "kind": "concurrent_edit",
            "agents": [f"agent-{agent}", f"agent-{(agent + 1) % 4}"],
            "session_id": sid,
            "resolution": rng.choice(["merged", "retried", "yielded"]),
            "collision_id": f"{sid}-c",
        }
        emit("collision.detected", collision)
        if s == 0:
            emit("collision.detected", collision)  # a retry, same collision_id: one row
    if agent == 0 and s == 0:
        stale = NewEvent(type="session.updated", data={"session_id": sid, "name": "renamed late"}, metadata=meta)
        try:
            store.append(stream, [stale], expected_version=1, record_conflicts=True)
        except WrongExpectedVersion:
            return 1  # refused, and recorded in the conflicts stream
    return 0


# workspaces, instances, memory -----------------------------------------------------------

RUNTIMES = ["claude-code", "codex", "aider"]


def _workspace(store: EventStore, workspace: str, agent: int) -> int:
    """The agent's workspace: created (the create retried, as an agent without its ack would), then edited."""
    created = {"workspace_id": workspace, "name": f"repo of agent {agent}", "path": f"/src/agent{agent}/repo"}
    events = [
        NewEvent(type="workspace.created", data=created),
        NewEvent(type="workspace.created", data=created),
        NewEvent(type="workspace.updated", data={"workspace_id": workspace, "settings": {"default_branch": "main"}}),
    ]
    for e in events:
        store.append(f"workspace-{workspace}", [e])
    return len(events)


def _instance(sid: str, n: int, agent: int, runtime: str, model: str) -> dict[str, Any]:
    return {
        "session_id": sid,
        "instance_id": f"{sid}-i{n}",
        "agent_name": f"agent-{agent}-{runtime}",
        "model": model,
        "runtime": runtime,
        "worktree": f"/worktrees/{sid}-i{n}",
        "branch": f"agent{agent}/{sid}-i{n}",
    }


def _memories(agent: str, sid: str, s: int) -> list[dict[str, Any]]:
    """What an agent remembers after a session: a retried set, an entry that expired long ago,
    one deleted again, and a scratch entry that expires in an hour."""
    last = {"agent": agent, "key": "last_session", "value": {"session_id": sid, "index": s}}
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="microseconds")[:-6] + "Z"
    return [
        last,
        last,
        {"agent": agent, "key": f"notes-{s}", "value": ["check the flaky test"], "expires_at": soon},
        {"agent": agent, "key": "stale-lease", "value": True, "expires_at": "2000-01-01T00:00:00.000000Z"},
        {"agent": agent, "key": f"draft-{s}", "value": "half a plan"},
        {"agent": agent, "key": f"draft-{s}", "reason": "plan done"},
    ]


def run(url: str, *, agents: int = 4, sessions: int = 5, seed: int = 7) -> DemoResult:
    """Run the simulated agents against ``url`` (created and migrated first).

    A database that already holds events (a PostgreSQL demo run twice) gets new
    session ids, so the agents' expected versions hold. An agent's error is raised
    here; an agent process that dies makes the demo fail, never wait forever.
    """
    with EventStore.open(url) as store:
        head = store.head()[0]
        for slo in SLOS:
            store.append(
                f"slo-{slo['slo_id']}", [NewEvent(type="slo.defined", data=slo, metadata={"agent_id": "operator"})]
            )
        # workspaces, instances, memory: a workspace nobody uses any more, archived
        scratch = f"run{head}-scratch" if head else "scratch"
        operator = {"agent_id": "operator"}
        store.append(
            f"workspace-{scratch}",
            [
                NewEvent(
                    type="workspace.created", data={"workspace_id": scratch, "name": "scratch"}, metadata=operator
                ),
                NewEvent(
                    type="workspace.archived", data={"workspace_id": scratch, "reason": "unused"}, metadata=operator
                ),
                NewEvent(  # the archive retried: archived_at of the first
                    type="workspace.archived", data={"workspace_id": scratch, "reason": "unused"}, metadata=operator
                ),
            ],
        )
    prefix = f"run{head}-" if head else ""
    start = time.perf_counter()
    # concurrent.futures, not multiprocessing.Pool: a worker that dies, or a result that
    # cannot be unpickled, fails the futures (BrokenProcessPool) instead of hanging the Pool.
    with ProcessPoolExecutor(agents, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_agent, url, a, sessions, seed, prefix) for a in range(agents)]
        try:
            counts = [f.result() for f in futures]
        except BrokenProcessPool as e:
            raise EventStoreError(f"a demo agent process died: {e}") from None
        finally:
            for f in futures:
                f.cancel()
    seconds = time.perf_counter() - start
    total = sum(counts) + len(SLOS) + 3  # + the scratch workspace's three events
    return DemoResult(
        agents=agents,
        sessions=agents * sessions,
        events=total,
        seconds=round(seconds, 3),
        events_per_second=round(sum(counts) / seconds, 1),
    )


def operations(store: EventStore, key_dir: str, *, by: str = "demo-operator") -> dict[str, Any]:
    """What an operator does beside the agents, each step appending its governance event: a
    credential created and revoked, a legal hold on a data subject (whose erasure is refused,
    then overridden with a reason), retention (a floor, a policy, a prune of scratch events),
    and an archive of the first positions (with ``prune --archived``'s checks, as a dry run: the
    demo keeps its payloads)."""
    from . import holds, retention
    from .audit import archive, notes
    from .errors import LegalHoldActive
    from .service.credentials import Credentials

    run = store.head()[0]
    creds = Credentials(store)
    creds.create(f"contractor-{run}", "appender", [f"contractor-{run}/*"], created_by=by)
    creds.revoke(f"contractor-{run}", revoked_by=by)
    # a data subject's message, held for a case; its erasure refused, then overridden (both recorded)
    subject = f"customer-{run}"
    store.append(
        f"support-{run}",
        [
            NewEvent(
                type="message.appended",
                data={"session_id": f"support-{run}", "message_id": "m1", "role": "user", "content": "my address"},
                subject=subject,
            )
        ],
    )
    hold = holds.place(store, subject=subject, reason="case 2026-117", by=by)
    try:
        store.erase(subject, requested_by="dpo")
        refused = False
    except LegalHoldActive:
        refused = True
    store.erase(subject, requested_by="dpo", override_hold="court order lifts the hold for erasure")
    holds.release(store, hold.id, by=by, reason="case closed")
    # retention: scratch events kept 0 s (the floor lowered for the demo, then restored)
    floor = retention.floor_seconds(store)
    retention.set_floor(store, "0s", by=by)
    retention.set_policy(store, streams="scratch-*", keep="0s", by=by)
    store.append(f"scratch-{run}", [NewEvent(type="note", data={"tmp": i}) for i in range(3)])
    pruned = retention.prune(store, by=by)
    retention.remove_policy(store, streams="scratch-*", by=by)
    retention.set_floor(store, retention.format_duration(floor), by=by)
    # an archive of the first hundred positions, checked offline, its payloads then pruned
    signer = notes.Signer.from_text(signing_key(key_dir).read_text())
    through = min(100, store.head()[0])
    path = Path(key_dir) / f"archive-1-{through}.jsonl.gz"
    info = archive.write_archive(store, path, through, signer=signer, by=by, replace=True)
    checked = archive.verify_archive(path, signer.verifier)
    dropped = archive.prune_archived(store, path, signer.verifier, by=by, dry_run=True)  # the read models keep theirs
    return {
        "erase_refused_under_hold": refused,
        "pruned_by_policy": pruned.count,
        "archive": str(path),
        "archive_entries": checked.checked if checked.ok else 0,
        "archive_sha256": info.sha256,
        "archived_payloads_prunable": dropped.count,
    }


def signing_key(key_dir: str) -> Path:
    """The demo log's key file in ``key_dir``, made on first use (mode 0600, with verifier.pub)."""
    from .audit import notes

    key_file = Path(key_dir) / "signing.key"
    if not key_file.exists():
        signer = notes.Signer.generate("demo.eventstore.local/log")
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(signer.to_text() + "\n")
        (Path(key_dir) / "verifier.pub").write_text(signer.verifier.to_text() + "\n")
    return key_file


def audit(store: EventStore, key_dir: str) -> dict[str, Any]:
    """Sign a checkpoint (making a demo key on first use), then check an offline receipt."""
    from .audit import notes, proofs

    signer = notes.Signer.from_text(signing_key(key_dir).read_text())
    signed = store.checkpoint(signer)
    position = max(1, signed.checkpoint.size // 2)
    receipt = store.tlog_proof(position, signed)
    check = proofs.check_proof_text(receipt, [], signer.verifier)
    return {
        "origin": signed.checkpoint.origin,
        "tree_size": signed.checkpoint.size,
        "root": signed.checkpoint.root.hex(),
        "receipt_position": position,
        "receipt_ok": check.ok,
    }
