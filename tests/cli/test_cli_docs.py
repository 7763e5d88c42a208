"""docs/cli.md documents every command there is."""

from __future__ import annotations

from pathlib import Path

import click

from eventstore.cli import main


def command_paths(cmd: click.Command, path: tuple[str, ...] = ()) -> list[str]:
    out = [" ".join(path)] if path else []
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            out += command_paths(sub, (*path, name))
    return out


def test_every_command_is_in_the_cli_docs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    missing = [p for p in command_paths(main) if f"`eventstore {p}`" not in doc]
    assert not missing, f"undocumented commands: {missing}"
