"""CLI commands for auditors: verify, receipts, keys, checkpoints, proofs, cosignatures."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click
import msgspec

from ..audit import notes, proofs
from ..errors import UserError
from ..records import Receipt, VerifyReport
from .base import Context, echo_json, main, pass_ctx, progress


def _read(path: str, what: str) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text") from None


def _verifier(path: str) -> notes.Verifier:
    """A log's verifier key (a witness key here is a mix-up: refused)."""
    v = notes.Verifier.from_text(_read(path, "public key"))
    if v.alg == notes.ALG_COSIGNATURE_V1:
        raise UserError(f"{path} is a witness (cosigner) key; give the log's verifier key here")
    return v


def _witness(path: str) -> notes.Verifier:
    """A witness's cosigner key: the log's own key would make the cosignature check meaningless."""
    v = notes.Verifier.from_text(_read(path, "witness key"))
    if v.alg != notes.ALG_COSIGNATURE_V1:
        raise UserError(f"--witness-key {path} is a log's key, not a witness key (keygen --cosigner makes one)")
    return v


def _signer(path: str) -> notes.Signer:
    """Load a signing key; warn when others may read it (the log's signatures are only as good as its secrecy)."""
    p = Path(path)
    f = p / "signing.key" if p.is_dir() else p
    signer = notes.Signer.from_text(_read(str(f), "signing key"))
    try:
        mode = f.stat().st_mode
    except OSError:
        mode = 0
    if mode & 0o077:
        click.echo(
            f"warning: signing key {f} is accessible to group or others (mode {mode & 0o777:03o}); run: chmod 600 {f}",
            err=True,
        )
    return signer


def _unverified_checkpoint(path: str) -> notes.SignedCheckpoint:
    """A checkpoint parsed without checking its signature (for the prover's side)."""
    note = notes.Note.parse(_read(path, "checkpoint"))
    return notes.SignedCheckpoint(notes.Checkpoint.parse(note.text), note)


def _print_report(report: VerifyReport, as_json: bool, what: str) -> None:
    if as_json:
        echo_json(report)
    elif report.ok:
        click.echo(
            f"OK: {what}: {report.checked} entries checked, positions "
            f"{report.from_position}..{report.to_position}, head {report.head_position} {report.head_hash or ''}".rstrip()
        )
    else:
        p = report.problem
        assert p is not None
        click.echo(f"FAILED at position {p.position} ({p.kind}): {p.message}")


@main.command()
@click.option(
    "--from", "from_", type=click.IntRange(min=1), default=1, show_default=True, help="First position to check."
)
@click.option("--to", type=click.IntRange(min=1), help="Last position to check (default: the head).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
@click.option("--checkpoint", "checkpoint_file", help="Also check this signed checkpoint against the log.")
@click.option("--public-key", "public_key", help="The log's verifier key (with --checkpoint).")
@click.option("--witness-key", "witness_keys", multiple=True, help="Require a cosignature by this witness key.")
@click.option(
    "--state", "state_file", help="Auditor state file: refuse rollbacks and forks, remember the newest checkpoint."
)
def verify(
    ctx: Context,
    from_: int,
    to: int | None,
    as_json: bool,
    checkpoint_file: str | None,
    public_key: str | None,
    witness_keys: tuple[str, ...],
    state_file: str | None,
) -> None:
    """Rehash every payload and entry and check every link; exit 0 if intact, 1 if not.

    With --checkpoint and --public-key, also check the signature and that the log's
    first N entries have exactly the checkpoint's root; with --state, that it is
    consistent with the newest checkpoint this auditor accepted before.
    """
    if checkpoint_file is None:
        if public_key or state_file or witness_keys:
            raise UserError("--public-key, --witness-key and --state need --checkpoint")
        with ctx.open(readonly=True) as store, progress("verifying", None) as update:
            report = store.verify(from_, to, progress=update)
        _print_report(report, as_json, "chain intact")
        raise SystemExit(0 if report.ok else 1)
    if public_key is None:
        raise UserError("--checkpoint needs --public-key (the log's verifier key)")
    if from_ != 1 or to is not None:
        raise UserError("--checkpoint verifies the whole log; drop --from/--to")
    from ..audit import Auditor

    checker = Auditor(_verifier(public_key), state_file, [_witness(w) for w in witness_keys])
    text = _read(checkpoint_file, "checkpoint")
    with ctx.open(readonly=True) as store, progress("verifying", None) as update:
        report = checker.verify(store, text, progress=update)
    what = "chain intact"
    if report.ok:
        cp = checker.open(text).checkpoint
        what = f"chain intact and checkpoint {cp.origin} at size {cp.size} matches"
    _print_report(report, as_json, what)
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
    with ctx.open(readonly=True) as store:
        for r in receipts:
            report = store.verify_receipt(r)
            _print_report(report, as_json, f"receipt for position {r.position}")
            ok = ok and report.ok
    raise SystemExit(0 if ok else 1)


@main.command()
@click.option("--name", required=True, help="Key name: for a log, its origin (e.g. example.com/agents-audit).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory for the key files.")
@click.option("--cosigner", is_flag=True, help="Make a witness key for cosignatures (C2SP tlog-cosignature).")
def keygen(name: str, out_dir: str, cosigner: bool) -> None:
    """Make an Ed25519 key pair: DIR/signing.key (mode 0600) and DIR/verifier.pub.

    Both files appear or neither; nothing is written through a symbolic link and no
    existing file is replaced.
    """
    signer = notes.Signer.generate(name, cosigner=cosigner)
    _write_key_pair(
        Path(out_dir),
        {"signing.key": (signer.to_text() + "\n", 0o600), "verifier.pub": (signer.verifier.to_text() + "\n", 0o644)},
    )
    click.echo(signer.verifier.to_text())


def _write_new(dirfd: int, name: str, text: str, mode: int) -> None:
    """Create ``name`` in the directory (never following a symlink, never replacing a file), synced."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dirfd)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _write_key_pair(out: Path, files: dict[str, tuple[str, int]]) -> None:
    """A new directory is filled under a temporary name and renamed into place (atomic); in an
    existing one, each file is written under a temporary name and hard-linked to its name
    (link refuses an existing name, a symlink included), and undone if the second link fails."""
    if out.is_symlink():
        raise UserError(f"{out} is a symbolic link; refusing to write keys through it")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        try:
            dirfd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for name, (text, mode) in files.items():
                    _write_new(dirfd, name, text, mode)
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
            os.chmod(tmp, 0o755)
            os.rename(tmp, out)  # fails if a non-empty directory appeared meanwhile
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    try:
        dirfd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise UserError(f"cannot write keys into {out}: {e.strerror}") from None
    linked: list[str] = []
    temps: list[str] = []
    try:
        for name in files:
            if _lexists(name, dirfd):
                raise UserError(f"{out / name} exists; refusing to overwrite a key")
        for name, (text, mode) in files.items():
            tmp_name = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            _write_new(dirfd, tmp_name, text, mode)
            temps.append(tmp_name)
            try:
                os.link(tmp_name, name, src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
            except FileExistsError:
                raise UserError(f"{out / name} exists; refusing to overwrite a key") from None
            linked.append(name)
        os.fsync(dirfd)
    except BaseException:
        for name in linked:  # never leave half a key pair
            os.unlink(name, dir_fd=dirfd)
        raise
    finally:
        for tmp_name in temps:
            os.unlink(tmp_name, dir_fd=dirfd)
        os.close(dirfd)


def _lexists(name: str, dirfd: int) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


@main.command()
@click.option("--key", "key_path", required=True, help="Key directory from keygen (or the signing.key file).")
@click.option("--json", "as_json", is_flag=True, help="Print origin, size, root and the note as JSON.")
@pass_ctx
def checkpoint(ctx: Context, key_path: str, as_json: bool) -> None:
    """Sign a checkpoint of the current log (C2SP tlog-checkpoint), store it and print it."""
    signer = _signer(key_path)
    if signer.alg != notes.ALG_ED25519:
        raise UserError("that is a cosigner key; a checkpoint needs the log's key")
    with ctx.open(create=False) as store:
        signed = store.checkpoint(signer)
    if as_json:
        cp = signed.checkpoint
        echo_json({"origin": cp.origin, "tree_size": cp.size, "root": cp.root.hex(), "note": signed.format()})
    else:
        click.echo(signed.format(), nl=False)


@main.group()
def prove() -> None:
    """Print self-describing JSON proofs: inclusion, consistency."""


@prove.command("inclusion")
@click.option("--position", type=click.IntRange(min=1), required=True)
@click.option("--checkpoint", "checkpoint_file", required=True, help="Prove against this checkpoint's tree.")
@pass_ctx
def prove_inclusion(ctx: Context, position: int, checkpoint_file: str) -> None:
    """Prove the entry at POSITION is in the checkpoint's tree."""
    cp = _unverified_checkpoint(checkpoint_file).checkpoint
    with ctx.open(readonly=True) as store:
        proof = store.prove_inclusion(position, cp.size, origin=cp.origin, root=cp.root)
    echo_json(proof)


@prove.command("consistency")
@click.option("--old", "old_file", required=True, help="The older checkpoint.")
@click.option("--new", "new_file", required=True, help="The newer checkpoint.")
@pass_ctx
def prove_consistency(ctx: Context, old_file: str, new_file: str) -> None:
    """Prove the old checkpoint's tree is a prefix of the new one's."""
    old = _unverified_checkpoint(old_file).checkpoint
    new = _unverified_checkpoint(new_file).checkpoint
    if old.origin != new.origin:
        raise UserError(f"the checkpoints are for different logs: {old.origin!r} and {new.origin!r}")
    with ctx.open(readonly=True) as store:
        proof = store.prove_consistency(old.size, new.size, origin=old.origin, old_root=old.root, new_root=new.root)
    echo_json(proof)


@main.command("verify-proof")
@click.argument("proof_file")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    help="The checkpoint (inclusion) or the old then the new checkpoint (consistency).",
)
@click.option("--public-key", "public_key", required=True, help="The log's verifier key.")
@click.option("--witness-key", "witness_keys", multiple=True, help="Require a cosignature by this witness key.")
@click.option("--json", "as_json", is_flag=True)
def verify_proof(
    proof_file: str, checkpoint_files: tuple[str, ...], public_key: str, witness_keys: tuple[str, ...], as_json: bool
) -> None:
    """Verify a proof offline, with no database; exit 0 valid, 1 invalid, 2 usage error."""
    result = proofs.check_proof_text(
        _read(proof_file, "proof"),
        [_read(c, "checkpoint") for c in checkpoint_files],
        _verifier(public_key),
        tuple(_witness(w) for w in witness_keys),
    )
    if as_json:
        echo_json(result)
    else:
        click.echo(("OK: " if result.ok else "INVALID: ") + result.message)
    raise SystemExit(0 if result.ok else 1)


@main.command()
@click.option("--position", type=click.IntRange(min=1), required=True)
@click.option("--checkpoint", "checkpoint_file", required=True, help="A signed checkpoint covering the position.")
@pass_ctx
def receipt(ctx: Context, position: int, checkpoint_file: str) -> None:
    """Print an offline receipt (c2sp.org/tlog-proof@v1) that verify-proof checks with nothing else."""
    signed = _unverified_checkpoint(checkpoint_file)
    with ctx.open(readonly=True) as store:
        click.echo(store.tlog_proof(position, signed), nl=False)


@main.command()
@click.option("--key", "key_path", required=True, help="The witness's key directory (keygen --cosigner).")
@click.option("--checkpoint", "checkpoint_file", required=True, help="The log's signed checkpoint.")
@click.option("--public-key", "public_key", required=True, help="The log's verifier key.")
@click.option("--state", "state_file", required=True, help="The witness's state: the newest checkpoint it cosigned.")
@click.option("--proof", "proof_file", help="Consistency proof from the state's checkpoint (else asked of --db).")
@pass_ctx
def cosign(
    ctx: Context, key_path: str, checkpoint_file: str, public_key: str, state_file: str, proof_file: str | None
) -> None:
    """As a witness: check the checkpoint's signature and its consistency with the last one
    cosigned, then add a C2SP cosignature and print the note."""
    from ..audit import Witness

    witness = Witness(_signer(key_path), _verifier(public_key), state_file)
    text = _read(checkpoint_file, "checkpoint")
    cproof = None
    if proof_file is not None:
        try:
            cproof = msgspec.json.decode(_read(proof_file, "proof"), type=proofs.ConsistencyProof)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise UserError(f"{proof_file}: not a consistency proof: {e}") from None
        cosigned = witness.cosign(text, proof=cproof)
    else:
        with ctx.open(readonly=True) as store:
            cosigned = witness.cosign(text, store=store)
    click.echo(cosigned.format(), nl=False)


@main.group("audit")
def audit_group() -> None:
    """The derived audit data (stored Merkle tree, stored checkpoints) against the log."""


@audit_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def audit_check(ctx: Context, as_json: bool) -> None:
    """Recompute every stored tree node and checkpoint root from the entries; exit 0 if they
    all match, 1 if any is damaged, planted or inconsistent (each named)."""
    with ctx.open(readonly=True) as store, progress("checking", None) as update:
        report = store.transparency.check(progress=update)
    if as_json:
        echo_json(report)
    else:
        for p in report.problems:
            click.echo(f"{p.kind}: {p.message}")
        click.echo(
            f"{'OK' if report.ok else 'DAMAGED'}: {report.nodes_checked} stored nodes and "
            f"{report.checkpoints_checked} checkpoints checked against {report.tree_size} entries"
        )
    raise SystemExit(0 if report.ok else 1)


@audit_group.command("repair")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def audit_repair(ctx: Context, as_json: bool) -> None:
    """Drop the stored Merkle tree and rebuild it from the entries (store owner only)."""
    with ctx.open(create=False) as store, progress("rebuilding the tree", None) as update:
        size = store.transparency.repair(progress=update)
        report = store.transparency.check()
    if as_json:
        echo_json({"synced_size": size, "check": report})
    else:
        click.echo(f"rebuilt the stored tree over {size} entries from the log")
        for p in report.problems:
            click.echo(f"{p.kind}: {p.message}")
    raise SystemExit(0 if report.ok else 1)
