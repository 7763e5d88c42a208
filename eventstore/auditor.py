"""An auditor's memory: the largest checkpoint it has accepted, kept in a state file.

With it, ``verify --state FILE`` refuses a checkpoint smaller than the one
remembered (rollback) and a log whose tree at the remembered size has another
root (fork or rewrite). The file is replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import msgspec

from .errors import UserError


class AuditorState(msgspec.Struct, kw_only=True):
    origin: str
    tree_size: int
    root: str
    checkpoint: str


def load_state(path: str | os.PathLike[str]) -> AuditorState | None:
    p = Path(path)
    if not p.exists():
        return None
    try:
        return msgspec.json.decode(p.read_bytes(), type=AuditorState)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise UserError(f"{p}: not an auditor state file: {e}") from None


def save_state(path: str | os.PathLike[str], state: AuditorState) -> None:
    p = Path(path)
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
    dirfd = os.open(p.parent or ".", os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
