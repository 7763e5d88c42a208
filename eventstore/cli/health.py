"""``eventstore health``: the store's health probe (``EventStore.health()``), exit 0 or 1."""

from __future__ import annotations

import click

from ..errors import EventStoreError
from .base import Context, echo_json, main, pass_ctx


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--max-lag",
    type=click.IntRange(min=0),
    help="Unhealthy when a read model is more than this many events behind the head (default: reported only).",
)
@click.option(
    "--read-only-ok",
    is_flag=True,
    help="A database that refuses appends (a read-only file, a standby) is healthy: for replicas and archives.",
)
@pass_ctx
def health(ctx: Context, as_json: bool, max_lag: int | None, read_only_ok: bool) -> None:
    """Check that the store can be used now: reachable, schema current, appends accepted,
    read models running; print the head and each read model's lag.

    Opens the database read-only (nothing is created, migrated or written) and checks that a
    read-write open could append (unless --read-only-ok). Exits 0 when healthy, 1 when not
    (an unreachable or missing database included), with one line per problem; a few indexed
    reads, cheap enough for a probe every second.
    """
    from ..health import unreachable

    dialect = "postgres" if ctx.db.startswith(("postgresql://", "postgres://")) else "sqlite"
    try:
        with ctx.open(readonly=True) as store:
            h = store.health(max_lag=max_lag, require_writable=not read_only_ok)
    except EventStoreError as e:
        h = unreachable(dialect, f"cannot open the store: {e}")
    if as_json:
        echo_json(h)
    else:
        state = "healthy" if h.ok else "UNHEALTHY"
        click.echo(
            f"{state}: {h.backend}, head {h.head_position}, schema {h.schema_version}/{h.schema_latest}, "
            + ("writable" if h.writable else "refuses appends")
            + (f", read-model lag {h.max_projection_lag}" if h.max_projection_lag is not None else "")
        )
        for p in h.problems:
            click.echo(f"  {p}")
    raise SystemExit(0 if h.ok else 1)
