"""``python -m benchmarks`` (and ``eventstore bench`` in a source checkout): print the figures.

Run by ``make bench``; docs/performance.md records them.
"""

from __future__ import annotations

import click
import msgspec


def echo_json(value: object) -> None:
    click.echo(msgspec.json.encode(value).decode())


@click.command()
@click.option("--quick", is_flag=True, help="Small sizes (a smoke run, not figures to record).")
@click.option(
    "--events",
    type=click.IntRange(1000),
    default=None,
    help="Events in the largest case of the SQLite suite (default 100,000; the others in proportion).",
)
@click.option("--repeat", type=click.IntRange(1, 9), default=3, show_default=True, help="Runs per case (median).")
@click.option("--postgres", "pg_url", help="Also run the PostgreSQL suite against this empty, disposable database.")
@click.option(
    "--projections", "with_projections", is_flag=True, help="Also measure read-model rebuilds and live projection."
)
@click.option("--projection-events", type=click.IntRange(1000), default=100_000, show_default=True)
@click.option("--checkpoint", "with_checkpoint", is_flag=True, help="Also measure checkpoints and proofs.")
@click.option("--checkpoint-events", type=click.IntRange(1000), default=1_000_000, show_default=True)
@click.option("--prune", "with_prune", is_flag=True, help="Also measure prune (retention) beside a plain file copy.")
@click.option("--prune-events", type=click.IntRange(1000), default=200_000, show_default=True)
@click.option(
    "--service",
    "with_service",
    is_flag=True,
    help="Instead of the log suite: 'eventstore serve' under 16 keep-alive connections vs 16 processes "
    "appending directly, on SQLite (and on PostgreSQL with --postgres URL: databases are created "
    "on its server).",
)
@click.option(
    "--service-seconds",
    type=click.FloatRange(0.5),
    default=5.0,
    show_default=True,
    help="Seconds per service case (--quick: 1).",
)
@click.option("--skip-log", is_flag=True, help="Skip the SQLite event-log suite.")
@click.option("--skip-operations", is_flag=True, help="Skip backup, prune and archive (each beside a plain file copy).")
@click.option(
    "--operation-events",
    type=click.IntRange(1000),
    default=None,
    help="Events in the store for backup, prune and archive (default: --events, else 100,000).",
)
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Where to put the scratch databases.")
@click.option("--json", "as_json", is_flag=True)
def bench(
    quick: bool,
    events: int | None,
    repeat: int,
    pg_url: str | None,
    with_projections: bool,
    projection_events: int,
    with_checkpoint: bool,
    checkpoint_events: int,
    with_prune: bool,
    prune_events: int,
    with_service: bool,
    service_seconds: float,
    skip_log: bool,
    skip_operations: bool,
    operation_events: int | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Print events/s beside baselines measured in the same run, with ratios and targets."""
    from . import harness as b

    def say(msg: str) -> None:
        if not as_json:
            click.echo(f"... {msg}", err=True)

    figures = []
    if with_service:
        from . import service_bench

        seconds, runs = (1.0, 1) if quick else (service_seconds, repeat)
        figures += service_bench.figures("sqlite", seconds=seconds, runs=runs, progress=say)
        if pg_url:
            figures += service_bench.figures("postgres", pg=pg_url, seconds=seconds, runs=runs, progress=say)
        skip_log, skip_operations, pg_url = True, True, None
    if not skip_log:
        scale = None if events is None else events / max(b.SQLITE_SIZES.values())
        figures += b.run_sqlite(quick=quick, scale=scale, repeat=repeat, directory=directory, progress=say)
    if not skip_operations:
        from .operations import run_operations

        n_ops = operation_events or events or 100_000
        figures += run_operations(n_ops // (10 if quick else 1), repeat=repeat, directory=directory, progress=say)
    if pg_url:
        figures += b.run_postgres(pg_url, quick=quick, repeat=repeat, progress=say)
    if with_projections:
        say("projection rebuilds")
        figures += b.run_projections(projection_events // (10 if quick else 1), directory=directory)
        from .live_projection import run_live

        say("live projection under 5,000 appends/s")
        figures += run_live(5000, 1.0 if quick else 5.0, directory=directory)
    if with_checkpoint:
        figures += b.run_checkpoint(checkpoint_events // (10 if quick else 1), directory=directory, progress=say)
    if with_prune:
        from .prune_bench import run_prune

        figures += run_prune(prune_events // (10 if quick else 1), repeat=repeat, directory=directory, progress=say)
    if as_json:
        echo_json(figures)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="eventstore bench (medians; same machine, same run)")
    for col in ("case", "ours", "baseline", "baseline value", "ratio", "target", "met", "note"):
        t.add_column(col, justify="right" if col in ("ours", "baseline value", "ratio") else "left")
    for f in figures:
        base = f"{f.base:,.0f}" if f.base else ""
        ratio = f"{f.ratio:.2f}" if f.base else ""
        met = "" if f.met is None else ("yes" if f.met else "NO")
        t.add_row(
            f.case,
            f"{f.ours:,.3f} {f.unit}" if f.unit == "ms" else f"{f.ours:,.0f}",
            f.baseline,
            base,
            ratio,
            f.target,
            met,
            f.note,
        )
    Console(width=max(Console().width, 200)).print(t)


if __name__ == "__main__":
    bench(prog_name="python -m benchmarks")
