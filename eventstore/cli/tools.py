"""CLI commands for trying the store out: demo."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from ..store import EventStore
from .base import Context, console, echo_json, main, pass_ctx

if TYPE_CHECKING:
    from rich.console import Console

DEMO_DB = "demo.db"
DEMO_KEYS = "demo-keys"


@main.command()
@click.option("--agents", type=click.IntRange(1, 32), default=4, show_default=True, help="Agent processes.")
@click.option("--sessions", type=click.IntRange(1, 10_000), default=5, show_default=True, help="Sessions per agent.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--service/--no-service",
    "with_service",
    default=True,
    show_default=True,
    help="Then start 'eventstore serve' on a free loopback port: agent processes append over HTTP "
    "with their own credentials, an auditor checks receipts and takes a checkpoint.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def demo(ctx: Context, agents: int, sessions: int, seed: int, with_service: bool, as_json: bool) -> None:
    """Simulated agents append concurrently to ./demo.db (or --db); then the same through the
    ingest service (agents with their own credentials over HTTP); then verify and summarise.

    A SQLite demo database is recreated on each run. Every wait is bounded and the server
    is always stopped: the demo finishes or fails, never hangs.
    """
    from .. import demo as demo_mod

    parent = click.get_current_context().find_root()
    url = ctx.db if parent.get_parameter_source("db") != ParameterSource.DEFAULT else DEMO_DB
    if not url.startswith("postgres"):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(url + suffix):
                os.remove(url + suffix)
    result = demo_mod.run(url, agents=agents, sessions=sessions, seed=seed)
    service: dict[str, Any] | None = None
    if with_service:
        from ..service.demo import run_service

        con = None if as_json else console()
        if con is not None:
            con.print(
                f"[bold]eventstore demo[/] on {url}: {result.agents} agent processes, {result.sessions} "
                f"sessions, {result.events} events in {result.seconds:.2f}s "
                f"({result.events_per_second:.0f} events/s, each acknowledged only once durable)"
            )
            con.print("[bold]the ingest service[/]:")
        service = run_service(
            url,
            agents=min(agents, 3),
            signing_key=demo_mod.signing_key(DEMO_KEYS),
            say=_say(con),
        )
    import projections

    with EventStore.open(url) as store:
        projections.run_all(store)
        models = projections.summary(store)
        audit = demo_mod.audit(store, DEMO_KEYS)
        operations = demo_mod.operations(store, DEMO_KEYS)
        projections.run_all(store)  # the read models see the operator's events too
        report = store.verify()
        stats = store.stats()
    summary = {
        "demo": result,
        "verify": report,
        "types": stats.types,
        "read_models": models,
        "audit": audit,
        "operations": operations,
        "service": service,
    }
    if as_json:
        echo_json(summary)
    else:
        from rich.table import Table

        con = console()
        if service is None:
            con.print(
                f"[bold]eventstore demo[/] on {url}: {result.agents} agent processes, {result.sessions} "
                f"sessions, {result.events} events in {result.seconds:.2f}s "
                f"({result.events_per_second:.0f} events/s, each acknowledged only once durable)"
            )
        else:
            con.print(
                f"[bold]service[/]: {service['agents']} agents appended {service['events']} events over HTTP "
                f"with their own credentials in {service['seconds']:.2f}s; each event's metadata.principal "
                f"names its credential; receipt {'[green]verified[/]' if service['receipt_ok'] else '[red]INVALID[/]'}"
                f", checkpoint at size {service['checkpoint_size']} signed through the API"
            )
        t = Table(title="events by type")
        t.add_column("type")
        t.add_column("count", justify="right")
        for typ, n in stats.types.items():
            t.add_row(typ, str(n))
        con.print(t)
        m = models
        con.print("[bold]read models[/] (built by the projector from the log):")
        con.print(
            f"  sessions by status: {m['sessions_by_status']}; messages: {m['messages']}; "
            f"tokens used: {m['tokens_used']}"
        )
        con.print(
            f"  tool executions: {m['tool_executions_by_status']}; failures by tool: "
            f"{m['tool_failures_by_tool'] or 'none'}"
        )
        con.print(
            f"  executions: {m['executions_by_status']}; collisions: {m['collisions_by_kind']}; agents: {m['agents']}"
        )
        for b in m["slo_breaches"]:
            con.print(
                f"  SLO breach: {b['slo_id']} ({b['severity']}) observed {b['observed']} > "
                f"threshold {b['threshold']} at position {b['position']}"
            )
        if not m["slo_breaches"]:
            con.print("  SLO breaches: none")
        # workspaces, instances, memory
        con.print(
            f"  workspaces: {len(m['workspaces'])} ({sum(w['status'] == 'archived' for w in m['workspaces'])} archived); "
            f"agent instances: {m['instances_by_status']}; sessions by runtime mix: "
            f"{sum(n for mix, n in m['sessions_by_runtime_mix'].items() if ',' in mix)} mixed, "
            f"{sum(n for mix, n in m['sessions_by_runtime_mix'].items() if ',' not in mix)} single-runtime; "
            f"memory entries: {sum(m['memory_entries_by_agent'].values())}"
        )
        con.print(
            f"[bold]audit[/]: signed checkpoint {audit['origin']} at size {audit['tree_size']} "
            f"(key in {DEMO_KEYS}/); offline receipt for position {audit['receipt_position']}: "
            f"{'[green]verified[/]' if audit['receipt_ok'] else '[red]INVALID[/]'}"
        )
        ops = operations
        con.print(
            f"[bold]operations[/]: a credential created and revoked; a legal hold "
            f"{'refused' if ops['erase_refused_under_hold'] else 'did NOT refuse'} an erasure, then an override "
            f"was recorded; retention pruned {ops['pruned_by_policy']} scratch payloads; archive {ops['archive']} "
            f"({ops['archive_entries']} entries) verified offline, {ops['archived_payloads_prunable']} payloads "
            "prunable with prune --archived (dry run)"
        )
        if report.ok:
            con.print(
                f"[green]chain verified[/]: {report.checked} entries, head {report.head_position} {report.head_hash}"
            )
        else:
            con.print(f"[red]chain FAILED[/] at {report.problem.position}: {report.problem.message}")  # type: ignore[union-attr]
    if not report.ok:
        raise SystemExit(1)


def _say(con: Console | None) -> Callable[[str], None]:
    """Print a progress line of the service demo on ``con`` (nothing for --json)."""
    if con is None:
        return lambda line: None
    return lambda line: con.print(line, markup=False)
