"""CLI commands for retention and legal holds: retention set/remove/list/floor, prune, hold place/release/list
(docs/operations.md, "Retention" and "Legal holds")."""

from __future__ import annotations

import click

from .base import Context, echo_json, main, pass_ctx
from .token import _operator

_BY_HELP = "Who does it, recorded in the log (default: cli:<os user>)."


@main.group()
def retention() -> None:
    """Retention policies and the minimum retention floor: set, remove, list, floor."""


@retention.command("set")
@click.option("--streams", metavar="PATTERN", help="Glob of stream ids, e.g. 'agent-*'.")
@click.option("--type", "type_", metavar="TYPE", help="An event type, e.g. tool.finished.")
@click.option("--keep", required=True, metavar="DURATION", help="How long to keep payloads: 30d, 12h, 2w, 0s...")
@click.option("--by", help=_BY_HELP)
@pass_ctx
def retention_set(ctx: Context, streams: str | None, type_: str | None, keep: str, by: str | None) -> None:
    """Set (or replace) the policy of a stream glob or an event type; appends retention.policy_set.

    Refused, writing nothing, when DURATION is shorter than the floor ('retention floor').
    An event matching several policies is kept for the longest; one matching none, for ever.
    """
    from ..retention import set_policy

    with ctx.open() as store:
        p = set_policy(store, streams=streams, type=type_, keep=keep, by=by or _operator())
    click.echo(f"retention of {p.kind} {p.pattern!r}: {p.keep}", err=True)


@retention.command("remove")
@click.option("--streams", metavar="PATTERN", help="The stream glob of the policy.")
@click.option("--type", "type_", metavar="TYPE", help="The event type of the policy.")
@click.option("--by", help=_BY_HELP)
@pass_ctx
def retention_remove(ctx: Context, streams: str | None, type_: str | None, by: str | None) -> None:
    """Remove a policy (its events are then kept for ever); appends retention.policy_removed."""
    from ..retention import remove_policy

    with ctx.open() as store:
        p = remove_policy(store, streams=streams, type=type_, by=by or _operator())
    click.echo(f"removed the retention of {p.kind} {p.pattern!r} ({p.keep})", err=True)


@retention.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: floor and policies.")
@pass_ctx
def retention_list(ctx: Context, as_json: bool) -> None:
    """Show the floor and the policies, with the retention each has in effect (at least the floor)."""
    from ..retention import floor_seconds, format_duration, policies

    with ctx.open(readonly=True) as store:
        floor = floor_seconds(store)
        pols = policies(store)
    rows = [
        {
            "kind": p.kind,
            "pattern": p.pattern,
            "keep": p.keep,
            "keep_seconds": p.keep_seconds,
            "effective": format_duration(max(p.keep_seconds, floor)),
            "set_at": p.set_at,
            "set_by": p.set_by,
        }
        for p in pols
    ]
    if as_json:
        echo_json({"floor": format_duration(floor), "floor_seconds": floor, "policies": rows})
        return
    click.echo(f"floor\t{format_duration(floor)}")
    for r in rows:
        click.echo(
            f"{r['kind']}\t{r['pattern']}\tkeep={r['keep']}\teffective={r['effective']}\tset={r['set_at']} by {r['set_by']}"
        )


@retention.command("floor")
@click.argument("duration")
@click.option("--by", help=_BY_HELP)
@pass_ctx
def retention_floor(ctx: Context, duration: str, by: str | None) -> None:
    """Change the minimum retention floor (default 183d, six months); appends retention.floor_set.

    No policy may be set shorter than the floor; policies shorter than a raised floor are
    kept for the floor.
    """
    from ..retention import format_duration, set_floor

    with ctx.open() as store:
        seconds = set_floor(store, duration, by=by or _operator())
    click.echo(f"retention floor: {format_duration(seconds)}", err=True)


@main.command()
@click.option("--dry-run", is_flag=True, help="Count what would be pruned; write nothing.")
@click.option("--now", metavar="TIME", help="Measure policies from this ISO 8601 time instead of the clock.")
@click.option(
    "--archived",
    metavar="FILE",
    help="Instead of the policies: remove the payloads this archive holds, once it verifies with "
    "--public-key, is recorded in the log and matches the live log's entries.",
)
@click.option("--public-key", "public_key", metavar="FILE", help="The log's verifier key (with --archived).")
@click.option("--batch-size", default=5000, show_default=True, help="Payloads removed per transaction.")
@click.option("--by", help=_BY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def prune(
    ctx: Context,
    dry_run: bool,
    now: str | None,
    archived: str | None,
    public_key: str | None,
    batch_size: int,
    by: str | None,
    as_json: bool,
) -> None:
    """Remove the payloads of events past their retention policy; appends retention.pruned.

    The rows, digests, metadata and hashes stay: verify, receipts, checkpoints and proofs
    still pass, and reads show the event with "pruned": true and "data": null. Held events
    and the log's own governance events are never pruned. Works in short transactions, so
    agents can append meanwhile; safe to run again after a crash. With --archived FILE, the
    payloads of the archive's positions go instead, whatever the policies say (the archive
    keeps them; 'read --archive FILE' reads them).
    """
    from ..errors import UserError
    from ..retention import prune as prune_

    if archived is not None and (public_key is None or now is not None):
        raise UserError("--archived needs --public-key (the log's verifier key) and takes no --now")
    if archived is None and public_key is not None:
        raise UserError("--public-key goes with --archived FILE")
    with ctx.open() as store:
        if archived is not None:
            from ..audit.archive import prune_archived
            from .audit import _verifier

            report = prune_archived(
                store,
                archived,
                _verifier(str(public_key)),
                by=by or _operator(),
                dry_run=dry_run,
                batch_size=batch_size,
            )
        else:
            report = prune_(store, dry_run=dry_run, now=now, batch_size=batch_size, by=by or _operator())
    if as_json:
        echo_json(report)
        return
    span = f" (positions {report.from_position}..{report.to_position})" if report.count else ""
    per = ", ".join(f"{k}: {v}" for k, v in report.policies.items())
    click.echo(
        f"{'would prune' if dry_run else 'pruned'} {report.count} payloads{span}"
        f"{' by ' + per if per else ''}; {report.held} held; floor {report.floor}"
        + (f"; recorded at position {report.event_position}" if report.event_position else "")
    )


@main.group()
def hold() -> None:
    """Legal holds: place, release, list. Held events are never pruned; a held subject is not erased."""


@hold.command("place")
@click.option("--streams", metavar="PATTERN", help="Glob of stream ids to hold, e.g. 'agent-7/*'.")
@click.option("--subject", metavar="ID", help="A data subject to hold (their events, and their erasure).")
@click.option("--reason", required=True, help="Why (the case); shown when an erasure is refused.")
@click.option("--by", help=_BY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the hold as JSON.")
@pass_ctx
def hold_place(
    ctx: Context, streams: str | None, subject: str | None, reason: str, by: str | None, as_json: bool
) -> None:
    """Place a legal hold; prints its id. Appends hold.placed."""
    from ..holds import place

    with ctx.open() as store:
        h = place(store, streams=streams, subject=subject, reason=reason, by=by or _operator())
    if as_json:
        echo_json(h)
        return
    click.echo(h.id)
    click.echo(f"placed hold {h.id} on {h.kind} {h.pattern!r}", err=True)


@hold.command("release")
@click.argument("hold_id", metavar="ID")
@click.option("--reason", help="Why it is released (recorded in the log).")
@click.option("--by", help=_BY_HELP)
@pass_ctx
def hold_release(ctx: Context, hold_id: str, reason: str | None, by: str | None) -> None:
    """Release a hold in force; appends hold.released (the hold stays listed, released)."""
    from ..holds import release

    with ctx.open() as store:
        h = release(store, hold_id, by=by or _operator(), reason=reason)
    click.echo(f"released hold {h.id} at {h.released_at}", err=True)


@hold.command("list")
@click.option("--active", is_flag=True, help="Only holds in force.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@pass_ctx
def hold_list(ctx: Context, active: bool, as_json: bool) -> None:
    """List legal holds, oldest first."""
    from ..holds import holds

    with ctx.open(readonly=True) as store:
        found = holds(store, active_only=active)
    for h in found:
        if as_json:
            echo_json({**{f: getattr(h, f) for f in h.__struct_fields__}, "active": h.active})
        else:
            state = "active" if h.active else f"released {h.released_at} by {h.released_by}"
            click.echo(f"{h.id}\t{h.kind}\t{h.pattern}\t{state}\t{h.reason}\tplaced={h.placed_at} by {h.placed_by}")
