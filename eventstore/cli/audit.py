"""CLI commands for auditors: verify, verify-receipt (and, with issue 4, checkpoints and proofs)."""

from __future__ import annotations

from typing import Any

import click
import msgspec

from ..errors import UserError
from ..records import Receipt, VerifyReport
from . import Context, echo_json, main, pass_ctx, progress


def _print_report(report: VerifyReport, as_json: bool, what: str) -> None:
    if as_json:
        echo_json(report)
    elif report.ok:
        click.echo(f"OK: {what}: {report.checked} entries checked, positions "
                   f"{report.from_position}..{report.to_position}, head {report.head_position} {report.head_hash or ''}".rstrip())
    else:
        p = report.problem
        assert p is not None
        click.echo(f"FAILED at position {p.position} ({p.kind}): {p.message}")


@main.command()
@click.option("--from", "from_", type=click.IntRange(min=1), default=1, show_default=True, help="First position to check.")
@click.option("--to", type=click.IntRange(min=1), help="Last position to check (default: the head).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def verify(ctx: Context, from_: int, to: int | None, as_json: bool) -> None:
    """Rehash every payload and entry and check every link; exit 0 if intact, 1 if not."""
    with ctx.open(migrate=False, create=False) as store:
        with progress("verifying", None) as update:
            report = store.verify(from_, to, progress=update)
    _print_report(report, as_json, "chain intact")
    raise SystemExit(0 if report.ok else 1)


@main.command("verify-receipt")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def verify_receipt(ctx: Context, file: Any, as_json: bool) -> None:
    """Check a receipt (JSON, as printed by append) against the stored log; exit 0 or 1.

    FILE may hold one receipt or several, one per line; all must verify.
    """
    raw = file.read()
    receipts: list[Receipt] = []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            receipts.append(msgspec.json.decode(line, type=Receipt))
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise UserError(f"{file.name}: line {n}: not a receipt: {e}") from None
    if not receipts:
        raise UserError(f"{file.name}: no receipt found")
    ok = True
    with ctx.open(migrate=False, create=False) as store:
        for r in receipts:
            report = store.verify_receipt(r)
            _print_report(report, as_json, f"receipt for position {r.position}")
            ok = ok and report.ok
    raise SystemExit(0 if ok else 1)
