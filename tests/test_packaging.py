"""The wheel carries everything the installed package needs: its code, its migrations, its markers.

The wheel is built here, offline, with the build backend installed by the ``test`` extra
(``--no-build-isolation``, so no index is asked for hatchling). A build that fails FAILS
these tests: a missing migration in a wheel is a broken release, not something to skip.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"building the wheel failed:\n{build.stdout}\n{build.stderr}"
    wheels = list(out.glob("eventstore_audit-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _sources(root: Path, pattern: str) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob(pattern))}


@pytest.mark.slow
def test_wheel_ships_every_migration_byte_for_byte(wheel: Path) -> None:
    expected = _sources(ROOT / "migrations", "*/*.sql")
    assert {k.split("/")[0] for k in expected} >= {"sqlite", "postgres"}
    with zipfile.ZipFile(wheel) as z:
        shipped = {
            n.removeprefix("eventstore/_migrations/"): z.read(n)
            for n in z.namelist()
            if n.startswith("eventstore/_migrations/")
        }
    assert shipped == expected


@pytest.mark.slow
def test_wheel_ships_every_module_and_the_typing_marker(wheel: Path) -> None:
    expected = set(_sources(ROOT, "eventstore/**/*.py")) | set(_sources(ROOT, "projections/**/*.py"))
    expected |= {p for p in ("eventstore/py.typed", "projections/py.typed") if (ROOT / p).exists()}
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert expected <= names, sorted(expected - names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


@pytest.mark.slow
def test_installed_wheel_finds_its_migrations_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """Imported from the unpacked wheel (not the checkout), the store still creates its schema."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import eventstore; from eventstore import EventStore; "
        "assert eventstore.__file__.startswith(sys.argv[1]), eventstore.__file__; "
        "s = EventStore.open('w.db'); print(s.stats().schema_version)"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code, str(site)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    newest = max(int(p.name[:4]) for p in (ROOT / "migrations" / "sqlite").glob("*.sql"))
    assert int(out.stdout.strip()) == newest
