"""CLI commands: tools (see docs/cli.md)."""

from __future__ import annotations
