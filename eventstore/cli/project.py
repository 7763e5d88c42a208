"""CLI commands: project (see docs/cli.md)."""

from __future__ import annotations
