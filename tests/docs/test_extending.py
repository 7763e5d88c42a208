"""docs/extending.md, run as written: a package with entry points (a ``.dist-info`` beside it on
PYTHONPATH, which importlib.metadata finds as pip would install it) and the CLI in subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eventstore import EventStore, NewEvent
from tests.docs.test_worked_examples import _matches

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"
FILE = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)\n```", re.S)
BIN = Path(sys.executable).parent


def write_package(d: Path) -> None:
    files = FILE.findall(DOC.read_text())
    assert {name for name, _ in files} == {"invoices/__init__.py", "invoices-1.0.dist-info/entry_points.txt"}
    for name, text in files:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text + "\n")
    (d / "invoices-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: invoices\nVersion: 1.0\n")


def _env(pkg: Path, db: Path) -> dict[str, str]:
    path = os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")])
    return os.environ | {"PYTHONPATH": path, "EVENTSTORE_DB": str(db), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.slow
def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    pkg = tmp_path / "site"
    write_package(pkg)
    db = tmp_path / "eventstore.db"
    text = DOC.read_text()
    block = text[text.index("```console\n") + len("```console\n") :].split("\n```")[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    env = _env(pkg, db)
    for command, expected in steps:
        r = subprocess.run(["bash", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        got = (r.stdout + r.stderr).splitlines()
        assert len(got) == len(expected) and all(_matches(e, a) for e, a in zip(expected, got)), (command, got)
    with EventStore.open(db) as store:  # this process never imported the plugin: the rows are the CLI's
        assert store.backend.query("SELECT invoice_id, amount_cents, payer FROM invoices ORDER BY invoice_id") == [
            ("i1", 1250, None),
            ("i2", 700, "Ada"),
        ]


@pytest.mark.slow
def test_a_broken_or_clashing_plugin_is_one_line_and_can_be_turned_off(tmp_path: Path) -> None:
    pkg = tmp_path / "site"
    write_package(pkg)
    db = tmp_path / "eventstore.db"
    with EventStore.open(db) as store:
        store.append("s", [NewEvent(type="note", data={})])
    eps = pkg / "invoices-1.0.dist-info" / "entry_points.txt"
    eps.write_text(eps.read_text() + "\n[eventstore.projections]\nbroken = invoices_missing:Nothing\n")
    env = _env(pkg, db)
    r = subprocess.run([str(BIN / "eventstore"), "project", "run"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "plugin entry point 'broken = invoices_missing:Nothing'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(
        [str(BIN / "eventstore"), "project", "run"], env=env | {"EVENTSTORE_NO_PLUGINS": "1"}, capture_output=True
    )
    assert r.returncode == 0
    eps.write_text("[eventstore.catalogue]\nagain = eventstore.catalogue:AGENTS\n")
    r = subprocess.run([str(BIN / "eventstore"), "read"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "redefines event type" in r.stderr, r.stderr
