"""What every command shares: the ``main`` group with ``--db``, error handling (user errors
are one line on stderr and exit status 2; damage is a verdict, exit 1), JSON output,
consoles and progress bars. Command modules import this; it imports none of them.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import click
import msgspec

from ..errors import DatabaseDamaged, EventStoreError
from ..store import EventStore

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_DB = "eventstore.db"


class Context:
    """What every command gets: the database URL and how to open it."""

    def __init__(self, db: str):
        self.db = db
        _refuse_service_url(db)

    def open(self, *, readonly: bool = False, **kwargs: Any) -> EventStore:
        """Open the store; ``readonly=True`` for commands that only read: the database must
        exist and is neither created, migrated nor written (see docs/cli.md).

        An http(s) URL gives a ``RemoteStore`` (cli/remote.py): the same calls over the
        service's API, with the credential in EVENTSTORE_TOKEN.
        """
        from .remote import RemoteStore, is_service_url

        if is_service_url(self.db):
            return cast(EventStore, RemoteStore(self.db))  # duck-typed: what the remote commands call
        if readonly:
            return EventStore.open(self.db, readonly=True, **kwargs)
        return EventStore.open(self.db, **kwargs)


def _refuse_service_url(db: str) -> None:
    """With --db http(s)://, refuse at once (one line, exit 2) a command that needs the database
    itself; its --help still works."""
    from .remote import check_command, is_service_url

    if not is_service_url(db) or {"-h", "--help"} & set(sys.argv[1:]):
        return
    check_command(db, click.get_current_context().invoked_subcommand)


_NO_ARGS_IS_HELP: type[Exception] = getattr(click.exceptions, "NoArgsIsHelpError", type("_Never", (Exception,), {}))
DEBUG_ENV = "EVENTSTORE_DEBUG"
"""Set to 1 to get the traceback of an unexpected error (a bug) instead of its one-line summary."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _environment_error(e: BaseException) -> str | None:
    """A one-line message for failures of the machine or of input, not of eventstore: full
    disk, unreadable files, undecodable text, input nested too deep. None for anything else."""
    if isinstance(e, OSError):
        if e.errno == errno.ENOSPC:
            return "no space left on device" + (f" (writing {e.filename})" if e.filename else "")
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or _one_line(str(e))}"
    if isinstance(e, UnicodeError):
        return f"input is not valid UTF-8 text ({e.__class__.__name__}: {getattr(e, 'reason', e)})"
    if isinstance(e, RecursionError):
        return "input is nested too deeply"
    if isinstance(e, MemoryError):
        return "out of memory"
    if isinstance(e, sqlite3.Error):
        if "full" in str(e):
            return f"no space left on device (SQLite: {_one_line(str(e))})"
        return f"database error: {_one_line(str(e))}"
    return None


class _Group(click.Group):
    """Every failure ends as one line and an exit status; never as a traceback.

    * damage found while reading (``DatabaseDamaged``): a verdict, ``FAILED ...`` on stdout, exit 1;
    * eventstore errors and usage errors: ``error: ...`` on stderr, exit 2;
    * failures of the environment (full disk, unreadable file, bad UTF-8, deep nesting):
      ``error: ...``, exit 2;
    * anything else is a bug in eventstore: ``error: internal error ...``, exit 2, with the
      traceback only when EVENTSTORE_DEBUG=1 (tests set it, so bugs fail them).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatabaseDamaged as e:
            click.echo(f"FAILED (unreadable): {_one_line(str(e))}")
            ctx.exit(1)
        except EventStoreError as e:
            click.echo(f"error: {_one_line(str(e))}", err=True)
            ctx.exit(2)
        except click.UsageError as e:
            if isinstance(e, _NO_ARGS_IS_HELP):  # a group run bare: its help is the answer
                raise
            where = e.ctx.command_path if e.ctx is not None else ctx.command_path
            click.echo(f"error: {where}: {_one_line(e.format_message())} (see '{where} -h')", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as e:
            message = _environment_error(e)
            if message is None:
                if os.environ.get(DEBUG_ENV) == "1":
                    raise
                message = (
                    f"internal error (a bug in eventstore, please report it; {DEBUG_ENV}=1 shows "
                    f"the traceback): {type(e).__name__}: {_one_line(str(e))[:200]}"
                )
            click.echo(f"error: {message}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="EVENTSTORE_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Database path or URL (sqlite:///file.db, postgresql://...), or a service's URL "
    "(http(s)://host:8787; its credential in EVENTSTORE_TOKEN). Env: EVENTSTORE_DB.",
)
@click.version_option(package_name="eventstore-audit")
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
    from rich.table import Column

    # The description keeps at most a third of the line and the bar takes what is left, so
    # the counts and the time stay readable on an 80-column terminal.
    width = Console(stderr=True).width
    with Progress(
        TextColumn(
            "{task.description}", table_column=Column(max_width=max(10, width // 3), no_wrap=True, overflow="ellipsis")
        ),
        BarColumn(bar_width=None),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        expand=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def console() -> Console:
    """A rich console for stdout. Piped or redirected output is not cut at 80 columns: tables
    there are as wide as their content (a terminal keeps its own width)."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=100_000, soft_wrap=True)
