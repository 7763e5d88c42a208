"""``python -m benchmarks --service`` runs (a smoke run; the figures are in docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_service_reports_serve_against_direct_processes_ratios_first() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--service", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert [f["case"].split(":")[0] for f in figures] == ["sqlite"] * 3  # the log suite is not run
    first = figures[0]
    assert first["baseline"] == "16 processes appending directly" and first["ratio"] > 0 and first["ours"] > 0
    assert figures[1]["unit"] == "ms" and "error" not in first["note"]
