"""CLI commands for operators: project run, rebuild, status (docs/projections.md)."""

from __future__ import annotations

import signal
import threading

import click

from ..errors import UserError
from .base import Context, console, echo_json, main, pass_ctx, progress


@main.group()
def project() -> None:
    """Projector workers: build the read models from the log."""


@project.command("run")
@click.option("--follow", is_flag=True, help="After catching up, keep following the log until stopped.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=2000, show_default=True)
@click.option(
    "--lease",
    "lease_seconds",
    type=click.FloatRange(1),
    default=30.0,
    show_default=True,
    help="Seconds a worker's lease lasts without renewal.",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.01),
    default=1.0,
    show_default=True,
    help="Longest wait for new events in --follow (PostgreSQL wakes at once on NOTIFY).",
)
@pass_ctx
def project_run(ctx: Context, follow: bool, batch_size: int, lease_seconds: float, poll: float) -> None:
    """Catch every read model up from its checkpoint (and follow the tail with --follow)."""
    from projections import Runner

    with ctx.open() as store:
        runner = Runner(store, batch_size=batch_size, lease_seconds=lease_seconds)
        try:
            with progress("projecting", store.head()[0]) as update:
                applied = runner.run_once(progress=update)
            click.echo(" ".join(f"{k}={v}" for k, v in applied.items()), err=True)
            if follow:
                stop = threading.Event()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())
                runner.follow(stop, poll=poll)
        finally:
            runner.release()
        failed = [s for s in runner.status() if s.state in ("failed", "ahead of log")]
    for s in failed:
        click.echo(f"{s.name} stopped at position {s.error_position}: {s.error}", err=True)
    raise SystemExit(1 if failed else 0)


@project.command("rebuild")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Rebuild every read model.")
@pass_ctx
def project_rebuild(ctx: Context, names: tuple[str, ...], all_: bool) -> None:
    """Rebuild read models from position 1 beside the live ones, then swap them in atomically."""
    from projections import Runner

    if all_ == bool(names):
        raise UserError("name the projections to rebuild, or give --all")
    with ctx.open() as store:
        runner = Runner(store)
        try:
            todo = list(names) or [p.name for p in runner.projections]
            with progress(f"rebuilding {', '.join(todo)}", store.head()[0]) as update:
                positions = runner.rebuild_many(todo, progress=update)
            for name, position in positions.items():
                click.echo(f"rebuilt {name} up to position {position}", err=True)
        finally:
            runner.release()


@project.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def project_status(ctx: Context, as_json: bool) -> None:
    """Per projection: checkpoint, log head, lag in events, state and any error.

    Exits 0 when every projection is caught up or behind, 1 when any has failed,
    is ahead of the log (restored from an older backup: rebuild it) or is stale.
    """
    from projections import Runner

    with ctx.open(readonly=True) as store:
        rows = Runner(store).status()
    code = 0 if all(s.ok for s in rows) else 1
    if as_json:
        echo_json(rows)
        raise SystemExit(code)
    from rich.table import Table

    t = Table()
    for col in ("projection", "version", "checkpoint", "head", "lag", "state", "error"):
        t.add_column(col)
    for s in rows:
        err = f"at {s.error_position}: {s.error}" if s.error else ""
        t.add_row(s.name, str(s.version), str(s.checkpoint), str(s.head), str(s.lag), s.state, err)
    console().print(t)
    raise SystemExit(code)


@project.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def project_check(ctx: Context, as_json: bool) -> None:
    """List dangling references in the read models: sessions referenced but never started
    (status unknown), tool.finished without tool.started, tool calls naming a message their
    session lacks, replies to unknown messages, events after a session's deletion, instances,
    executions, metrics and collisions naming sessions that never started, instance.finished
    and execution.finished without a start, metrics of executions that never started, and
    sessions whose workspace was never created (docs/events.md lists every kind).

    The log keeps such evidence and the read models show it (nothing is dropped); this lists
    it. Reads the read models as of their checkpoints (run 'project run' first). Exits 0 when
    there is none, 1 when there is some (at most 1000 listed per kind; the counts are complete).
    """
    from projections.check import check

    with ctx.open(readonly=True) as store:
        report = check(store)
    if as_json:
        echo_json(report)
        raise SystemExit(0 if report.ok else 1)
    for d in report.dangling:
        session = f"session {d.session_id}" if d.session_id is not None else None
        where = " ".join(w for w in (session, d.item_id) if w)  # either may be absent
        click.echo(f"{d.kind}: {where}: {d.detail}" if where else f"{d.kind}: {d.detail}")
    summary = ", ".join(f"{k}={n}" for k, n in report.counts.items() if n)
    click.echo("no dangling references" if report.ok else f"dangling references: {summary}", err=True)
    raise SystemExit(0 if report.ok else 1)
