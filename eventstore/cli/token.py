"""CLI commands for service credentials: token create, list, revoke (docs/api.md, "Credentials")."""

from __future__ import annotations

import getpass

import click

from .base import Context, echo_json, main, pass_ctx


def _operator() -> str:
    try:
        return "cli:" + getpass.getuser()
    except Exception:
        return "cli:unknown"


@main.group()
def token() -> None:
    """Credentials of 'eventstore serve': create, list, revoke."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["appender", "reader", "auditor", "admin"]), required=True)
@click.option(
    "--streams",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Glob of streams an appender may write, e.g. 'agent-7/*' (repeatable; appenders only).",
)
@click.option("--expires", metavar="DURATION", help="Lifetime such as 90m, 12h, 30d, 2w (default: none).")
@click.option("--by", "created_by", help="Who creates it, recorded in the log (default: cli:<os user>).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (with the secret).")
@pass_ctx
def token_create(
    ctx: Context,
    name: str,
    role: str,
    patterns: tuple[str, ...],
    expires: str | None,
    created_by: str | None,
    as_json: bool,
) -> None:
    """Create a credential; print its secret once, on the first line of stdout.

    Only the secret's SHA-256 is stored; a lost secret cannot be shown again (revoke
    it and create another). Appends a credential.created event to stream 'credentials'.
    """
    from ..service.credentials import Credentials, parse_duration

    expires_in = parse_duration(expires) if expires else None
    with ctx.open() as store:
        secret, cred = Credentials(store).create(
            name, role, patterns, expires_in=expires_in, created_by=created_by or _operator()
        )
    if as_json:
        echo_json(
            {
                "secret": secret,
                "name": cred.name,
                "role": cred.role,
                "patterns": cred.patterns,
                "expires_at": cred.expires_at,
                "created_at": cred.created_at,
                "created_by": cred.created_by,
            }
        )
        return
    click.echo(secret)
    scope = f" on {', '.join(cred.patterns)}" if cred.patterns else ""
    until = f", expires {cred.expires_at}" if cred.expires_at else ""
    click.echo(
        f"created {cred.role} credential {cred.name!r}{scope}{until}; the secret above is not shown again", err=True
    )


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@pass_ctx
def token_list(ctx: Context, as_json: bool) -> None:
    """List credentials and their state (never a secret)."""
    from ..service.credentials import Credentials

    with ctx.open() as store:
        creds = Credentials(store).list()
    if as_json:
        for c in creds:
            echo_json({**{f: getattr(c, f) for f in c.__struct_fields__}, "state": c.state})
        return
    for c in creds:
        click.echo(
            f"{c.name}\t{c.role}\t{c.state}\t{','.join(c.patterns) or '-'}\t"
            f"expires={c.expires_at or '-'}\tcreated={c.created_at} by {c.created_by}"
        )


@token.command("revoke")
@click.argument("name")
@click.option("--by", "revoked_by", help="Who revokes it, recorded in the log (default: cli:<os user>).")
@pass_ctx
def token_revoke(ctx: Context, name: str, revoked_by: str | None) -> None:
    """Revoke a credential: refused from the next request on; appends credential.revoked."""
    from ..service.credentials import Credentials

    with ctx.open() as store:
        c = Credentials(store).revoke(name, revoked_by=revoked_by or _operator())
    click.echo(f"revoked {c.name!r} at {c.revoked_at}", err=True)
