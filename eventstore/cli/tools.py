"""CLI commands for trying the store out: demo."""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

from ..store import EventStore
from .base import Context, echo_json, main, pass_ctx, console

DEMO_DB = "demo.db"
DEMO_KEYS = "demo-keys"


@main.command()
@click.option("--agents", type=click.IntRange(1, 32), default=4, show_default=True, help="Agent processes.")
@click.option("--sessions", type=click.IntRange(1, 10_000), default=5, show_default=True, help="Sessions per agent.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def demo(ctx: Context, agents: int, sessions: int, seed: int, as_json: bool) -> None:
    """Simulated agents append concurrently to ./demo.db (or --db); then verify and summarise.

    A SQLite demo database is recreated on each run.
    """
    from .. import demo as demo_mod

    parent = click.get_current_context().find_root()
    url = ctx.db if parent.get_parameter_source("db") != ParameterSource.DEFAULT else DEMO_DB
    if not url.startswith("postgres"):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(url + suffix):
                os.remove(url + suffix)
    result = demo_mod.run(url, agents=agents, sessions=sessions, seed=seed)
    import projections

    with EventStore.open(url) as store:
        report = store.verify()
        stats = store.stats()
        projections.run_all(store)
        models = projections.summary(store)
        audit = demo_mod.audit(store, DEMO_KEYS)
    summary = {"demo": result, "verify": report, "types": stats.types, "read_models": models, "audit": audit}
    if as_json:
        echo_json(summary)
    else:
        from rich.table import Table

        con = console()
        con.print(f"[bold]eventstore demo[/] on {url}: {result.agents} agent processes, {result.sessions} sessions, "
                  f"{result.events} events in {result.seconds:.2f}s ({result.events_per_second:.0f} events/s, "
                  "each acknowledged only once durable)")
        t = Table(title="events by type")
        t.add_column("type")
        t.add_column("count", justify="right")
        for typ, n in stats.types.items():
            t.add_row(typ, str(n))
        con.print(t)
        m = models
        con.print("[bold]read models[/] (built by the projector from the log):")
        con.print(f"  sessions by status: {m['sessions_by_status']}; messages: {m['messages']}; "
                  f"tokens used: {m['tokens_used']}")
        con.print(f"  tool executions: {m['tool_executions_by_status']}; failures by tool: "
                  f"{m['tool_failures_by_tool'] or 'none'}")
        for b in m["slo_breaches"]:
            con.print(f"  SLO breach: {b['slo_id']} ({b['severity']}) observed {b['observed']} > "
                      f"threshold {b['threshold']} at position {b['position']}")
        if not m["slo_breaches"]:
            con.print("  SLO breaches: none")
        con.print(f"[bold]audit[/]: signed checkpoint {audit['origin']} at size {audit['tree_size']} "
                  f"(key in {DEMO_KEYS}/); offline receipt for position {audit['receipt_position']}: "
                  f"{'[green]verified[/]' if audit['receipt_ok'] else '[red]INVALID[/]'}")
        if report.ok:
            con.print(f"[green]chain verified[/]: {report.checked} entries, head {report.head_position} "
                      f"{report.head_hash}")
        else:
            con.print(f"[red]chain FAILED[/] at {report.problem.position}: {report.problem.message}")  # type: ignore[union-attr]
    if not report.ok:
        raise SystemExit(1)
