"""CLI commands for operators: backup, restore, maintain (eventstore.backup; docs/operations.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import UserError
from .base import Context, echo_json, main, pass_ctx, progress

if TYPE_CHECKING:
    from ..backup import VerifyMode


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option(
    "--verify",
    "verify",
    type=click.Choice(["full", "checkpoint"]),
    default="full",
    show_default=True,
    help="Check every entry of the copy, or only those since its newest checkpoint (O(new entries)).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def backup(ctx: Context, file: str, force: bool, verify: VerifyMode, as_json: bool) -> None:
    """Copy the SQLite store to FILE while agents append; verified before it is renamed into place.

    The copy is the log as of one commit, a single file. PostgreSQL: use pg_dump or a base
    backup (docs/operations.md).
    """
    from ..backup import backup as run_backup

    with ctx.open(readonly=True) as store, progress("copying pages", None) as update:
        report = run_backup(store, file, force=force, verify=verify, progress=update)
    if as_json:
        echo_json(report)
        return
    cp = report.checkpoint
    click.echo(
        f"backup {report.path}: {report.size_bytes} bytes, head {report.head_position} "
        f"({report.head_hash or '-'}), {report.entries_verified} entries verified from position {report.verified_from}"
        + (f", newest checkpoint {cp.origin} at size {cp.tree_size}" if cp else ", no checkpoint")
        + f", {report.seconds:.2f}s"
    )


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--force", is_flag=True, help="Restore even a backup behind a known checkpoint (recorded; needs --reason)."
)
@click.option("--reason", help="Why (recorded in the store.restored event; required with --force).")
@click.option("--by", help="Who restores (recorded; default: the OS user).")
@click.option("--state", "state_file", help="An auditor state file: refuse a backup behind its checkpoint too.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def restore(
    ctx: Context, file: str, force: bool, reason: str | None, by: str | None, state_file: str | None, as_json: bool
) -> None:
    """Replace the SQLite store at --db with the backup FILE, after verifying the backup.

    Refuses a backup whose head is behind the newest checkpoint the store (or --state) knows:
    that would be a silent rollback. Every restore appends a store.restored event (stream
    'maintenance') to the restored log.
    """
    from ..audit.state import load_state
    from ..backup import restore as run_restore

    state = None
    if state_file is not None:
        state = load_state(state_file)
        if state is None:
            raise UserError(f"no auditor state file at {state_file!r}")
    report = run_restore(ctx.db, file, force=force, reason=reason, by=by, state=state)
    if as_json:
        echo_json(report)
        return
    behind = report.behind
    click.echo(
        f"restored {report.db} from {report.backup}: {report.entries_verified} entries verified, backup head "
        f"{report.backup_head_position}"
        + (f", FORCED past checkpoint {behind.origin} at size {behind.tree_size}" if behind else "")
        + f"; recorded as store.restored at position {report.event_position}"
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def maintain(ctx: Context, as_json: bool) -> None:
    """Housekeeping: SQLite ANALYZE, WAL checkpoint, incremental vacuum (if enabled); PostgreSQL
    VACUUM ANALYZE of the read models and ANALYZE events (where the role may)."""
    from ..backup import maintain as run_maintain

    with ctx.open() as store:
        report = run_maintain(store)
    if as_json:
        echo_json(report)
        return
    for line in report.done:
        click.echo(f"done: {line}")
    for line in report.skipped:
        click.echo(f"skipped: {line}")
    click.echo(f"size {report.size_before} -> {report.size_after} bytes, {report.seconds:.2f}s")
