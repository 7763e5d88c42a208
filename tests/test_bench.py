"""`eventstore bench` runs end to end with tiny sizes and prints every row (no timing assertions)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from eventstore.cli import main

CASES = ["single appends, 1 thread", "single appends, 8 threads", "1,000-event batches", "100-event batches", "verify"]


@pytest.fixture(scope="module")
def has_eventsourcing() -> bool:
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        return False
    return True


def test_bench_json_has_every_case_with_its_baselines(tmp_path, has_eventsourcing):
    result = CliRunner().invoke(main, ["bench", "--events", "1000", "--repeat", "1", "--json", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    rows = {(f["case"], f["baseline"]) for f in figures}
    assert ("single appends, 1 thread", "raw sqlite3 one-row commits") in rows
    assert ("single appends, 8 threads", "raw sqlite3 one-row commits") in rows
    assert ("1,000-event batches", "raw sqlite3 executemany(1000)") in rows
    assert ("100-event batches", "raw sqlite3 executemany(100)") in rows
    assert ("verify", "raw scan hashing every row") in rows
    assert ("backup of 1,000 events", "copying the file (copyfile + fsync)") in {(c.split(" (")[0], b) for c, b in rows}
    if has_eventsourcing:
        assert ("single appends, 8 threads", "eventsourcing Application, 1 event/save") in rows
        assert ("100-event batches", "eventsourcing Application, 100 events/save") in rows
    for f in figures:
        assert f["ours"] > 0 and f["base"] > 0 and f["ratio"] > 0, f
    single = next(f for f in figures if f["case"] == "single appends, 1 thread")
    assert "synchronous=FULL" in single["note"]  # the default durability really syncs
    assert all(f["met"] is None or isinstance(f["met"], bool) for f in figures)


def test_bench_table_prints_every_case(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--events", "1000", "--repeat", "1", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for case in CASES:
        assert case in result.stdout
    assert "ratio" in result.stdout and "target" in result.stdout


def test_checkpoint_bench_reports_every_figure(tmp_path):
    """The one checkpoint benchmark: tree upkeep, first and routine checkpoints, proofs and their offline checks."""
    from benchmarks.harness import run_checkpoint

    figures = {f.case: f for f in run_checkpoint(300, directory=str(tmp_path))}
    assert "first checkpoint of an origin over 300 events (verifies every entry)" in figures
    assert "checkpoint over 10,307 events, 10,007 new since the last" in figures
    for case in (
        "inclusion proof",
        "consistency proof",
        "offline check of an inclusion proof",
        "offline check of a consistency proof",
        "root at an arbitrary size",
    ):
        assert figures[case].ours >= 0


def test_live_projection_bench_reports_lag_and_rates(tmp_path):
    """The live-projection figure: a projector following appends made by another process."""
    from benchmarks.live_projection import run_live

    [f] = run_live(1000, 1.0, directory=str(tmp_path))
    assert f.base > 0 and f.ours > 0 and "largest lag" in f.note and isinstance(f.met, bool)
