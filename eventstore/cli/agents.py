"""CLI commands over the ``agents`` read model: agents list, agents events (docs/projections.md)."""

from __future__ import annotations

import click

from .base import Context, console, echo_json, main, pass_ctx


@main.group()
def agents() -> None:
    """Per-agent activity, from the agents read model (run 'eventstore project run' first)."""


@agents.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def agents_list(ctx: Context, as_json: bool) -> None:
    """Per agent: events, sessions, messages, tokens, tool calls and failures, first and last seen."""
    from projections.agents import agent_rows

    with ctx.open(readonly=True) as store:
        rows = agent_rows(store)
    if as_json:
        echo_json(rows)
        return
    from rich.table import Table

    cols = ("agent", "events", "sessions", "messages", "tokens_used", "tool_calls", "tool_failures", "last_seen")
    t = Table()
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*(str(r[c]) for c in cols))
    console().print(t)


@agents.command("events")
@click.argument("agent")
@click.option("--since", help="From this time on (ISO date or time, UTC unless a zone is given).")
@click.option("--until", help="Before this time (ISO date or time).")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
@pass_ctx
def agents_events(ctx: Context, agent: str, since: str | None, until: str | None, limit: int) -> None:
    """Print the events attributed to AGENT as JSON lines, oldest first (an index lookup, not a scan)."""
    from projections.agents import agent_activity

    with ctx.open(readonly=True) as store:
        for ev in agent_activity(store, agent, since=since, until=until, limit=limit):
            echo_json(ev)
