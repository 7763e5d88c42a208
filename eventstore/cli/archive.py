"""CLI commands for archives: write one (``archive``) and check one offline (``verify-archive``)."""

from __future__ import annotations

import click

from ..audit import archive as archives
from ..audit import notes
from ..errors import UserError
from .audit import _signer, _verifier
from .base import Context, echo_json, main, pass_ctx, progress


@main.command()
@click.option("--to", "to_file", required=True, type=click.Path(dir_okay=False), help="The archive file to write.")
@click.option("--through", type=click.IntRange(min=1), required=True, help="Last position to archive.")
@click.option(
    "--from", "from_", type=click.IntRange(min=1), default=1, show_default=True, help="First position to archive."
)
@click.option(
    "--key",
    "key_path",
    help="The log's signing key (keygen directory or signing.key): signs a checkpoint if none stored covers --through.",
)
@click.option("--by", help="Who archives (recorded in the archive.created event; default: the OS user).")
@click.option("--replace", is_flag=True, help="Replace an existing file of that name.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@pass_ctx
def archive(
    ctx: Context,
    to_file: str,
    through: int,
    from_: int,
    key_path: str | None,
    by: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Write positions --from..--through, with the signed checkpoint and the proofs that tie
    them to it, to a compressed archive that verify-archive checks offline.

    The file appears complete or not at all; the archive is recorded in the log as an
    archive.created event (stream 'archives'). See docs/archive.md.
    """
    signer = _signer(key_path) if key_path else None
    if signer is not None and signer.alg != notes.ALG_ED25519:
        raise UserError("that is a cosigner key; an archive's checkpoint needs the log's key")
    with ctx.open(create=False) as store, progress("archiving", None) as update:
        info = archives.write_archive(
            store, to_file, through, from_position=from_, signer=signer, by=by, replace=replace, progress=update
        )
    if as_json:
        echo_json(info)
    else:
        click.echo(
            f"archived positions {info.from_position}..{info.through} ({info.entries} entries, {info.bytes} bytes, "
            f"sha256 {info.sha256}) to {info.file}, anchored to checkpoint {info.origin} at size {info.tree_size}; "
            f"recorded at position {info.event_position}"
            + (f"; {info.payloads_absent} payloads were already pruned" if info.payloads_absent else "")
        )


@main.command("verify-archive")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--public-key", "public_key", required=True, help="The log's verifier key.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_archive(file: str, public_key: str, as_json: bool) -> None:
    """Check an archive offline, with no database: every entry's hashes and links, their tie
    to the signed checkpoint, and its signature; exit 0 if intact, 1 if not (the first bad
    position is named), 2 on a usage error.

    A payload absent from a v2 archive is refused unless its header lists it as pruned before
    archiving; the report counts the payloads absent and names the first positions."""
    verifier = _verifier(public_key)
    with progress("verifying", None) as update:
        report = archives.verify_archive(file, verifier, progress=update)
    if as_json:
        echo_json(report)
    elif report.ok:
        click.echo(
            f"OK: archive intact: {report.checked} entries checked, positions {report.from_position}.."
            f"{report.through}, under checkpoint {report.origin} at size {report.tree_size} {report.root}"
        )
        if report.payloads_absent:
            click.echo(_absent(report))
    else:
        p = report.problem
        assert p is not None
        click.echo(f"FAILED at position {p.position} ({p.kind}): {p.message}")
    raise SystemExit(0 if report.ok else 1)


def _absent(report: archives.ArchiveReport) -> str:
    """The payloads an intact archive does not hold: after prune --archived they are nowhere."""
    n = report.payloads_absent
    at = ", ".join(map(str, report.payloads_absent_at)) + (", ..." if n > len(report.payloads_absent_at) else "")
    if report.format == archives.FORMAT_V1:
        why = f"an {archives.FORMAT_V1} archive does not say whether they were pruned before archiving or removed since"
    else:
        why = "each pruned before archiving, as the header lists"
    return f"payloads absent: {n} (positions {at}): {why}"
