"""CLI commands for the data in the log: schema checks and erasure."""

from __future__ import annotations

import click

from .base import Context, echo_json, main, pass_ctx, progress


@main.group()
def events() -> None:
    """Event schemas: check that every stored event reads as its current version."""


@events.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def events_check(ctx: Context, as_json: bool) -> None:
    """Report events that no registered upcaster chain brings to the current version; exit 1 if any."""
    with ctx.open(readonly=True) as store:
        with progress("checking events", None) as update:
            report = store.check_events(progress=update)
    if as_json:
        echo_json(report)
    else:
        for p in report.problems:
            click.echo(f"position {p.position} ({p.type} v{p.schema_version}): {p.error}")
        click.echo(
            f"{'OK' if report.ok else 'PROBLEMS'}: {report.checked} events checked, "
            f"{len(report.problems)} cannot be read as their current version"
        )
    raise SystemExit(0 if report.ok else 1)


@main.command()
@click.option("--subject", required=True, help="The data subject to erase.")
@click.option("--requested-by", required=True, help="Who asked for the erasure (recorded in the log).")
@click.option("--reason", help="Why (recorded in the log; no personal data).")
@click.option(
    "--override-hold",
    metavar="REASON",
    help="Erase although a legal hold covers the subject; the reason is recorded (hold.overridden).",
)
@pass_ctx
def erase(ctx: Context, subject: str, requested_by: str, reason: str | None, override_hold: str | None) -> None:
    """Append a subject.erased event and destroy the subject's key, in one transaction; prints its receipt.

    Every hash, receipt and proof still verifies afterwards; the subject's personal
    fields read as erased, and read models holding them rebuild on their next run.
    A subject under legal hold is refused unless --override-hold says why.
    """
    with ctx.open() as store:
        echo_json(store.erase(subject, requested_by=requested_by, reason=reason, override_hold=override_hold))
        if store.residue_pending:
            click.echo(
                "warning: erased, but old copies of the key may remain in the database files until "
                'a later clean-up (docs/events.md, "What erasure removes")',
                err=True,
            )
