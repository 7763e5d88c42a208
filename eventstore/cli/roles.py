"""CLI commands for PostgreSQL roles: roles apply."""

from __future__ import annotations

import click

from .base import Context, echo_json, main, pass_ctx


@main.group()
def roles() -> None:
    """Least-privilege PostgreSQL group roles: apply."""


@roles.command("apply")
@click.option("--schema", default=None, help="The store's schema (default: where the events table is).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def roles_apply(ctx: Context, schema: str | None, as_json: bool) -> None:
    """Create or update the least-privilege group roles (run as the owner).

    eventstore_appender appends and reads; eventstore_projector owns the read
    models; eventstore_auditor only reads. Idempotent: each role gets exactly its privileges on the store's schema, and
    loses any other it had there. Give people and services a role by membership:
    GRANT eventstore_appender TO alice.
    """
    from .. import roles as roles_mod
    from ..errors import UserError

    if not ctx.db.startswith(("postgresql://", "postgres://")):
        raise UserError("roles are a PostgreSQL feature; a SQLite store is protected by the permissions of its file")
    with ctx.open() as store:
        report = roles_mod.apply(store, schema)
    if as_json:
        echo_json(report)
        return
    for role, grants in report.grants.items():
        state = "created" if role in report.created else "updated"
        click.echo(f"{role} ({state}): " + "; ".join(grants))
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(f"make login roles members: GRANT {roles_mod.APPENDER} TO alice;")
