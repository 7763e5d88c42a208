"""The ``eventstore`` command line: every command is a thin wrapper over one library call.

Shared plumbing lives here: the ``--db`` option, error handling (user errors are one
line on stderr and exit status 2), JSON output and progress bars. Commands live in
one module per concept (``log``, ``audit``, ``project``, ``tools``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import msgspec

from ..errors import EventStoreError
from ..store import EventStore

DEFAULT_DB = "eventstore.db"


class Context:
    """What every command gets: the database URL and how to open it."""

    def __init__(self, db: str):
        self.db = db

    def open(self, **kwargs: Any) -> EventStore:
        return EventStore.open(self.db, **kwargs)


class _Group(click.Group):
    """Turns eventstore errors into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EventStoreError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="EVENTSTORE_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Database path or URL (sqlite:///file.db, postgresql://...). Env: EVENTSTORE_DB.",
)
@click.version_option(package_name="eventstore")
@click.pass_context
def main(ctx: click.Context, db: str) -> None:
    """A tamper-evident, event-sourced audit store for AI-agent systems."""
    ctx.obj = Context(db)


pass_ctx = click.make_pass_decorator(Context)


def echo_json(value: Any) -> None:
    """Print one value (Struct, dict, list) as a JSON line on stdout."""
    click.echo(msgspec.json.encode(value).decode())


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A rich progress bar on stderr when it is a terminal; a no-op updater otherwise.

    Yields ``update(done, total)``.
    """
    if not sys.stderr.isatty():
        yield lambda done, total=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


from . import audit, bench, data, log, project, serve, token, tools  # noqa: E402,F401  (registers commands)
