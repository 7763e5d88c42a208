"""docs/cli.md documents every command there is, with its current --help."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _reference_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_is_in_the_cli_docs() -> None:
    ref = _reference_module()
    doc = (DOCS / "cli.md").read_text()
    missing = [p for p in ref.command_paths(ref.main) if f"`eventstore {p}`" not in doc]
    assert not missing, f"undocumented commands: {missing}"


def test_the_help_blocks_are_current() -> None:
    """Run `python docs/cli_reference.py` after changing a command's options or docstring."""
    ref = _reference_module()
    doc = (DOCS / "cli.md").read_text()
    assert ref.render(doc) == doc, "docs/cli.md is stale: run python docs/cli_reference.py"
