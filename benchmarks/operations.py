"""Operations on a whole store beside a plain file copy of the same store, same run (issue 13).

Backup must be at least as fast as copying the database file (bytes per second, the copy
measured with ``shutil.copyfile`` plus an fsync, as the backup syncs too); prune and archive
are measured in events per second with the copy's rate beside them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

from eventstore import EventStore, NewEvent
from eventstore.audit.notes import Signer
from eventstore.backup import VerifyMode

from .harness import Figure, _figure, _median, copy_seconds, fill


def _copy_then_remove(source: str, target: str) -> float:
    elapsed = copy_seconds(source, target)
    os.unlink(target)
    return elapsed


def backup_seconds(source: str, target: str, verify: VerifyMode = "full") -> float:
    from eventstore.backup import backup

    with EventStore.open(source) as store:
        t = time.perf_counter()
        report = backup(store, target, force=True, verify=verify)
        elapsed = time.perf_counter() - t
    assert report.entries_verified > 0 and (verify == "checkpoint") == (report.verified_from > 1)
    os.unlink(target)
    return elapsed


def run_operations(
    n: int = 100_000, *, repeat: int = 3, directory: str | None = None, progress: Callable[[str], None] | None = None
) -> list[Figure]:
    say = progress or (lambda msg: None)
    with tempfile.TemporaryDirectory(dir=directory) as d:
        db = os.path.join(d, "ops.db")
        say(f"operations: filling {n:,} events")
        fill(db, n)
        with EventStore.open(db) as store:
            # A routine checkpoint, 1,000 entries before the head (the anchor of verify="checkpoint"),
            # then one file: fold the WAL in, as a backup's source would be.
            store.checkpoint(Signer.generate("bench.example/log"))
            store.append("after", [NewEvent(type="note", data={"i": i}) for i in range(1_000)])
            store.backend.query("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(db)
        mb = size / 1e6
        say("operations: file copy vs backup")
        copy = _median(lambda: _copy_then_remove(db, os.path.join(d, "copy.db")), repeat)
        back = _median(lambda: backup_seconds(db, os.path.join(d, "backup.db")), repeat)
        quick = _median(lambda: backup_seconds(db, os.path.join(d, "backup.db"), "checkpoint"), repeat)
    return [
        _figure(
            f"backup of {n:,} events ({mb:,.1f} MB), verified",
            mb / back,
            "copying the file (copyfile + fsync)",
            mb / copy,
            target=">= 1x the file copy",
            lo=1.0,
            unit="MB/s",
            note=f"backup {back * 1000:,.0f} ms (copy, then every entry rehashed), copy {copy * 1000:,.0f} ms; "
            f"{n / back:,.0f} events/s",
        ),
        _figure(
            f"backup of {n:,} events ({mb:,.1f} MB), verified since a checkpoint 1,000 entries back",
            mb / quick,
            "copying the file (copyfile + fsync)",
            mb / copy,
            target=">= 1x the file copy",
            lo=1.0,
            unit="MB/s",
            note=f"backup --verify checkpoint {quick * 1000:,.0f} ms (SQLite's backup API, then 1,000 entries "
            f"rehashed from the checkpoint's frontier), copy {copy * 1000:,.0f} ms",
        ),
    ]


__all__ = ["run_operations"]
