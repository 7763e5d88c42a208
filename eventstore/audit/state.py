"""An auditor's memory: the largest checkpoint it has accepted, kept in a state file.

With it, ``verify --state FILE`` refuses a checkpoint smaller than the one
remembered (rollback) and a log whose tree at the remembered size has another
root (fork or rewrite). The file is replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path

import msgspec

from ..errors import UserError
from ..files import fsync_dir


class AuditorState(msgspec.Struct, kw_only=True):
    origin: str
    tree_size: int
    root: str
    checkpoint: str


def load_state(path: str | os.PathLike[str]) -> AuditorState | None:
    """The state in the file, None if there is no file; UserError for anything unreadable or malformed."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UserError(f"cannot read auditor state file {p}: {e.strerror}") from None
    try:
        state = msgspec.json.decode(raw, type=AuditorState)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise UserError(f"{p}: not an auditor state file: {e}") from None
    except RecursionError:
        raise UserError(f"{p}: not an auditor state file: nested too deeply") from None
    try:
        root = base64.b64decode(state.root, validate=True)
    except (binascii.Error, ValueError):
        root = b""
    if state.tree_size < 0 or len(root) != 32:
        raise UserError(f"{p}: not an auditor state file: tree_size must be >= 0 and root a base64 SHA-256 hash")
    return state


def save_state(path: str | os.PathLike[str], state: AuditorState) -> None:
    try:
        _save_state(Path(path), state)
    except OSError as e:
        raise UserError(f"cannot write auditor state file {path}: {e.strerror or e}") from None


def _save_state(p: Path, state: AuditorState) -> None:
    fd, tmp = tempfile.mkstemp(dir=p.parent or ".", prefix=p.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(state)) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(p)
