"""Durable files: what backups, archives and state files need to survive a crash.

A file is written under a temporary name beside its target, synced, moved into place with
one rename (or link), and then its directory is synced, so that after a crash the target is
either the old file or the complete new one, never half of it.
"""

from __future__ import annotations

import os
import tempfile


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Sync a file's (or a directory's) contents to disk by its name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Sync the directory holding ``path``: makes a rename or link into it durable."""
    fsync_path(os.path.dirname(os.path.abspath(path)) or ".")


def temp_beside(path: str | os.PathLike[str]) -> str:
    """An empty temporary file in ``path``'s directory (so a rename onto ``path`` is atomic)."""
    target = os.fspath(path)
    fd, tmp = tempfile.mkstemp(
        dir=os.path.dirname(os.path.abspath(target)), prefix=os.path.basename(target) + ".", suffix=".tmp"
    )
    os.close(fd)
    return tmp
