"""CLI commands for the log itself: init, append, read, stats, migrate."""

from __future__ import annotations

import functools
import io
import itertools
import os
import select
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import click
import msgspec

from ..errors import (
    BackendError,
    EventStoreError,
    InvalidEvent,
    UserError,
    WrongExpectedVersion,
)
from ..mapping import check_name as _check_name
from ..records import NewEvent
from ..store import EventStore
from .base import Context, console, echo_json, main, pass_ctx

JSONL_BATCH = 1000


class JsonlRecord(msgspec.Struct, forbid_unknown_fields=True):
    """One line of ``append --jsonl``: the fields of the HTTP API's event (``subject``,
    ``personal``, ``id``) plus its stream and expected version."""

    stream: str
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = {}
    expected_version: int | None = None
    subject: str | None = None
    personal: list[str] | None = None
    id: str | None = None


def _json_object(text: str, what: str) -> Any:
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeError) as e:
        raise InvalidEvent(f"{what} is not valid JSON: {e}") from None
    except RecursionError:
        raise InvalidEvent(f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidEvent(f"{what} must be a JSON object")
    return value


def parse_jsonl(
    lines: Iterable[str], store: EventStore, first_line: int = 1
) -> list[tuple[int, str, list[NewEvent], int | None]]:
    """Parse and fully validate every line (as ``append`` would) before anything is written;
    errors name the line, counted from ``first_line``."""
    decoder = msgspec.json.Decoder(JsonlRecord)
    out = []
    it = iter(lines)
    for n in itertools.count(first_line):
        try:
            line = next(it)
        except StopIteration:
            break
        except UnicodeDecodeError as e:
            raise InvalidEvent(f"not UTF-8 text ({e.reason} at byte {e.start} of the input)", line=n) from None
        if not line.strip():
            continue
        try:
            rec = decoder.decode(line)
        except msgspec.ValidationError as e:
            raise InvalidEvent(str(e), line=n) from None
        except msgspec.DecodeError as e:
            raise InvalidEvent(f"not valid JSON: {e}", line=n) from None
        event = NewEvent(
            type=rec.type,
            data=rec.data,
            metadata=rec.metadata,
            subject=rec.subject,
            personal=tuple(rec.personal) if rec.personal is not None else None,
            id=rec.id,
        )
        try:
            _check_name(rec.stream, "stream")  # the same rules as append: NUL, encoding, length
            if rec.expected_version is not None and rec.expected_version < 0:
                raise InvalidEvent("expected_version must be >= 0", path="$.expected_version")
            store.prepare([event])
        except InvalidEvent as e:
            raise InvalidEvent(str(e), line=n) from None
        out.append((n, rec.stream, [event], rec.expected_version))
    return out


def _decoded(lines: Iterable[bytes]) -> Iterator[str]:
    """Lines as text; a line that is not UTF-8 raises UnicodeDecodeError when it is reached
    (``parse_jsonl`` names its line)."""
    for line in lines:
        yield line.decode()


def stream_batches(source: Any, limit: int = JSONL_BATCH) -> Iterator[tuple[int, Iterable[str]]]:
    """Lines of ``source`` in batches as they arrive: ``(number of the first line, lines)``.

    A batch is every complete line that has arrived when the reader catches up with the
    writer, at most ``limit`` lines: a line written by an agent that then waits is appended
    at once; a file or a fast pipe fills batches of ``limit``. A source without a file
    descriptor (a test's in-memory input) is cut into batches of ``limit``.
    """
    try:
        fd = source.buffer.fileno() if hasattr(source, "buffer") else source.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        fd = None
    first = 1
    if fd is None:
        it = iter(source)
        while batch := list(itertools.islice(it, limit)):
            yield first, batch
            first += len(batch)
        return
    pending: list[bytes] = []
    tail = b""
    while True:
        chunk = os.read(fd, 1 << 16)
        if chunk:
            *lines, tail = (tail + chunk).split(b"\n")
            pending += lines
        elif tail:
            pending.append(tail)
        while len(pending) >= limit:
            yield first, _decoded(pending[:limit])
            first += limit
            del pending[:limit]
        if pending and (not chunk or not select.select([fd], [], [], 0)[0]):
            yield first, _decoded(pending)
            first += len(pending)
            pending = []  # a new list: the batch just yielded is read lazily
        if not chunk:
            return


def _conflicting_line(
    store: EventStore, chunk: list[tuple[int, str, list[NewEvent], int | None]], e: WrongExpectedVersion
) -> int:
    """The line of ``chunk`` whose expected version failed (the chunk wrote nothing, so replay it)."""
    version = store.stream_version(e.stream_id)
    for n, stream, events, expected in chunk:
        if stream != e.stream_id:
            continue
        if expected is not None and expected != version:
            return n
        version += len(events)
    return next(n for n, s, _, exp in chunk if s == e.stream_id and exp == e.expected)


def _written(records: list[tuple[int, str, list[NewEvent], int | None]], done: int) -> str:
    """Which lines were appended (in earlier batches) and which were not, for an error message."""
    if not done:
        return "nothing was written"
    return (
        f"lines {records[0][0]}-{records[done - 1][0]} were appended (their receipts are printed above); "
        f"lines {records[done][0]}-{records[-1][0]} were not"
    )


def _append_batch(store: EventStore, chunk: list[tuple[int, str, list[NewEvent], int | None]], written: Any) -> None:
    """Append one validated batch atomically and print its receipts; on failure, say which lines
    were written (``written()``) in the error."""
    try:
        results = store.append_many([(s, evs, exp) for _, s, evs, exp in chunk])
    except EventStoreError as e:
        where = f"line {_conflicting_line(store, chunk, e)}: " if isinstance(e, WrongExpectedVersion) else ""
        raise (UserError if isinstance(e, UserError) else BackendError)(f"{where}{e}; {written()}") from None
    for receipts in results:
        for r in receipts:
            echo_json(r)


def _append_stream(store: EventStore, source: Any) -> None:
    """``append --jsonl -``: each batch of arrived lines validated, appended and acknowledged in turn."""
    done = 0  # the last line of the input appended so far

    def written(first: int) -> str:
        if not done:
            return "nothing was written"
        return f"lines 1-{done} were appended (their receipts are printed above); line {first} and later were not"

    for first, lines in stream_batches(source):
        try:
            chunk = parse_jsonl(lines, store, first_line=first)
        except InvalidEvent as e:
            raise InvalidEvent(f"{e}; {written(first)}") from None
        if chunk:
            _append_batch(store, chunk, lambda first=first: written(first))
            sys.stdout.flush()
        done = chunk[-1][0] if chunk else done


@main.command()
@pass_ctx
def init(ctx: Context) -> None:
    """Create the database and apply migrations."""
    with ctx.open() as store:
        click.echo(f"initialised {store.url} (schema version {store.stats().schema_version})", err=True)


@main.command()
@click.option("--stream", "stream_id", help="Stream id.")
@click.option("--type", "type_", help="Event type.")
@click.option("--data", help="Event data, a JSON object.")
@click.option("--metadata", default="{}", show_default=True, help="Event metadata, a JSON object.")
@click.option("--expected-version", type=int, help="Fail unless the stream is at this version (0: no stream yet).")
@click.option(
    "--jsonl",
    type=click.File("r"),
    help="Append JSON Lines from FILE ('-': standard input, streamed as lines arrive).",
)
@pass_ctx
def append(
    ctx: Context,
    stream_id: str | None,
    type_: str | None,
    data: str | None,
    metadata: str,
    expected_version: int | None,
    jsonl: Any,
) -> None:
    """Append events; print one receipt per event as a JSON line.

    Either --stream/--type/--data, or --jsonl FILE with one object per line:
    {"stream", "type", "data", optional "metadata", "expected_version", "subject",
    "personal" and "id"} (the HTTP API's fields).

    --jsonl FILE: every line is validated (as append would) before anything is
    written; lines are then appended in atomic batches of 1000.

    --jsonl - (standard input) is a stream: lines are appended as they arrive, in
    atomic batches of the lines that have arrived when the previous batch is written
    (at most 1000; one line from an agent that then waits is appended at once), and
    each batch's receipts are printed (and flushed) before the next is read. A batch is
    validated whole before it is written. A bad line or a conflict stops the input:
    earlier batches stay appended, that batch and the rest are not.

    If a batch fails (a conflicting expected version, a bad line on standard input),
    the error names the line and says which lines were appended and which not.
    """
    if jsonl is not None:
        if stream_id or type_ or data:
            raise UserError("give either --jsonl or --stream/--type/--data, not both")
        with ctx.open() as store:
            if jsonl is sys.stdin or getattr(jsonl, "name", None) in ("-", "<stdin>"):
                _append_stream(store, jsonl)
                return
            records = parse_jsonl(jsonl, store)
            for i in range(0, len(records), JSONL_BATCH):
                _append_batch(store, records[i : i + JSONL_BATCH], functools.partial(_written, records, i))
        return
    missing = [name for name, v in (("--stream", stream_id), ("--type", type_), ("--data", data)) if v is None]
    if missing or type_ is None or data is None or stream_id is None:
        raise UserError(f"missing {', '.join(missing)} (or use --jsonl FILE)")
    event = NewEvent(type=type_, data=_json_object(data, "--data"), metadata=_json_object(metadata, "--metadata"))
    with ctx.open() as store:
        for r in store.append(stream_id, [event], expected_version=expected_version):
            echo_json(r)


@main.command()
@click.option("--stream", "stream_id", help="Read one stream (in version order).")
@click.option(
    "--from",
    "from_",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="First position (or first version with --stream).",
)
@click.option("--limit", type=click.IntRange(min=0), help="At most this many events.")
@click.option("--archive", "archive_file", help="Read this archive file instead of the database (no --db needed).")
@pass_ctx
def read(ctx: Context, stream_id: str | None, from_: int, limit: int | None, archive_file: str | None) -> None:
    """Print events as JSON lines, in global order or one stream's order."""
    if archive_file is not None:
        from ..audit.archive import read_archive

        found = read_archive(archive_file, 1 if stream_id else from_)
        events = (e for e in found if e.stream_id == stream_id and e.version >= from_) if stream_id else found
        for n, ev in enumerate(events):
            if limit is not None and n >= limit:
                break
            echo_json(ev)
        return
    with ctx.open(readonly=True) as store:
        events = store.read_stream(stream_id, from_) if stream_id else store.read_all(from_)
        for n, ev in enumerate(events):
            if limit is not None and n >= limit:
                break
            echo_json(ev)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def stats(ctx: Context, as_json: bool) -> None:
    """Counts, streams, size and head hash."""
    with ctx.open(readonly=True) as store:
        s = store.stats()
    if as_json:
        echo_json(s)
        return
    from rich.table import Table

    t = Table(show_header=False, box=None)
    for k, v in (
        ("database", s.url),
        ("events", s.events),
        ("streams", s.streams),
        ("head position", s.head_position),
        ("head hash", s.head_hash or "-"),
        ("size", f"{(s.size_bytes or 0) / 1e6:.1f} MB"),
        ("schema version", s.schema_version),
    ):
        t.add_row(k, str(v))
    for typ, n in s.types.items():
        t.add_row(f"  {typ}", str(n))
    console().print(t)


@main.group()
def migrate() -> None:
    """Schema migrations: status, plan, up, down."""


@migrate.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def migrate_status(ctx: Context, as_json: bool) -> None:
    """List migrations and whether each is applied."""
    from ..backends import open_backend
    from ..migrate import Migrator

    backend = open_backend(ctx.db, readonly=True)
    try:
        rows = Migrator(backend).status()
    finally:
        backend.close()
    if as_json:
        echo_json([r.__dict__ for r in rows])
        return
    for r in rows:
        flag = " (destructive)" if r.destructive else ""
        click.echo(f"{r.version:04d}_{r.name}  {r.state}{flag}  {r.applied_at or ''}".rstrip())


@migrate.command("plan")
@pass_ctx
def migrate_plan(ctx: Context) -> None:
    """Show what 'migrate up' would apply."""
    from ..backends import open_backend
    from ..migrate import Migrator

    backend = open_backend(ctx.db, readonly=True)
    try:
        plan = Migrator(backend).plan()
    finally:
        backend.close()
    if not plan:
        click.echo("up to date", err=True)
    for m in plan:
        click.echo(f"{m.version:04d}_{m.name}{' (destructive)' if m.destructive else ''}")


@migrate.command("up")
@click.option("--allow-destructive", is_flag=True, help="Also apply migrations marked destructive.")
@pass_ctx
def migrate_up(ctx: Context, allow_destructive: bool) -> None:
    """Apply every pending migration."""
    from ..backends import open_backend
    from ..migrate import Migrator

    backend = open_backend(ctx.db)
    try:
        done = Migrator(backend).up(allow_destructive=allow_destructive)
    finally:
        backend.close()
    for m in done:
        click.echo(f"applied {m.version:04d}_{m.name}")
    if not done:
        click.echo("up to date", err=True)


@migrate.command("down")
@click.option("--allow-destructive", is_flag=True, help="Allow a rollback that deletes data.")
@pass_ctx
def migrate_down(ctx: Context, allow_destructive: bool) -> None:
    """Roll back the last applied migration."""
    from ..backends import open_backend
    from ..migrate import Migrator

    backend = open_backend(ctx.db, create=False)
    try:
        m = Migrator(backend).down(allow_destructive=allow_destructive)
    finally:
        backend.close()
    click.echo(f"rolled back {m.version:04d}_{m.name}" if m else "nothing to roll back")
