"""The projection contract: a name, a version, the SQL of its tables, and a batch handler.

A projection turns events into read-model rows. The runner hands it batches of
events (decoded, upcast, with erased fields as None) and a ``Tables`` handle
that writes into the generation being built; the runner commits the rows and
the projection's checkpoint in one transaction.

Rows must be a pure function of the log: use event fields and ``recorded_at``,
never the wall clock, so a rebuild reproduces them byte for byte.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from eventstore import codec
from eventstore.backends.base import Tx
from eventstore.records import RecordedEvent


class Tables:
    """SQL access to one generation of a projection's tables.

    ``{name}`` in SQL is replaced by the physical table of this generation
    (``sessions`` -> ``sessions__g3``); parameters use ``?``.
    """

    def __init__(self, tx: Tx, names: dict[str, str]):
        self.tx = tx
        self.names = names

    def sql(self, template: str) -> str:
        return template.format(**self.names)

    def execute(self, template: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.tx.execute(self.sql(template), params)

    def executemany(self, template: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.tx.executemany(self.sql(template), rows)

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert rows, replacing the non-key columns of rows whose ``key`` already exists."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        self.executemany(
            f"INSERT INTO {{{table}}} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
            rows,
        )

    def fetch_by_keys(self, template: str, keys: Sequence[Any], chunk: int = 500) -> list[tuple[Any, ...]]:
        """Run ``template`` (with ``IN ({keys})``) for many keys, in chunks."""
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(keys), chunk):
            part = list(keys[i : i + chunk])
            sql = self.sql(template.replace("({keys})", "(" + ",".join("?" * len(part)) + ")"))
            out += self.tx.execute(sql, part)
        return out


class Projection(ABC):
    """Subclass per read model; one module each (see projections/sessions.py)."""

    name: ClassVar[str]
    version: ClassVar[int]
    tables: ClassVar[tuple[str, ...]]
    """Public names of the tables; each is a view over the active generation's table."""
    ddl: ClassVar[str]
    """CREATE statements (';'-separated), with ``{table}`` placeholders for physical names and
    ``{json}`` for the type of a JSON column (``TEXT`` on SQLite, ``JSONB`` on PostgreSQL)."""
    ddl_postgres: ClassVar[str] = ""
    """Statements run on PostgreSQL only, after ``ddl`` (a GIN index on a ``{json}`` column, say)."""
    personal: ClassVar[bool] = False
    """True if rows may hold personal fields: an erasure then triggers a rebuild."""
    types: ClassVar[frozenset[str]] = frozenset()
    """Event types the projection reads (others are skipped without a call)."""
    pruned_types: ClassVar[frozenset[str]] = frozenset()
    """Types of ``types`` whose pruned events (retention: ``pruned`` true, ``data`` None; type,
    stream, metadata and position remain) the projection still gets; others are skipped."""
    views: ClassVar[dict[str, str]] = {}
    """Derived views over the public names of this projection's tables (name -> SELECT): the
    runner drops and recreates them around every swap, so they survive rebuilds (PostgreSQL
    refuses to drop a view another view depends on)."""

    @abstractmethod
    def apply(self, events: Sequence[RecordedEvent], db: Tables) -> None:
        """Apply a batch of events (in position order) to the tables."""

    def statements(self, names: dict[str, str], dialect: str = "sqlite") -> list[str]:
        """The DDL of one generation for a backend's dialect (the projection's migration:
        a changed ``ddl`` comes with a new ``version``, and the runner rebuilds)."""
        ddl = self.ddl + (";" + self.ddl_postgres if dialect == "postgres" and self.ddl_postgres else "")
        values = {"json": JSON_TYPES.get(dialect, "TEXT"), "keyed": KEYED.get(dialect, "")} | names
        return [s.strip().format(**values) for s in ddl.split(";") if s.strip()]


JSON_TYPES = {"sqlite": "TEXT", "postgres": "JSONB"}
"""The column type ``{json}`` stands for. Values are written as JSON text on both (``json_text``)
and read back as JSON text on both (the PostgreSQL backend loads ``jsonb`` as text)."""


KEYED = {"sqlite": "WITHOUT ROWID"}
"""What ``{keyed}`` after a table's closing parenthesis stands for: on SQLite, a table stored in
its primary key's B-tree (one tree to insert into instead of a table and its key's index; for
the many-row key tables of read models, such as ``agent_events``); nothing on PostgreSQL."""


def json_text(value: Any) -> str | None:
    """Canonical JSON text for a JSON value stored in a TEXT column (None stays NULL)."""
    if value is None:
        return None
    return codec.encode(value).decode()


class View:
    """A view across read models, over their **public** names (``sessions``, never ``sessions__g2``).

    The runner creates it once every table it reads exists, and drops and recreates it in the
    transaction that swaps in a rebuilt generation of any of them (PostgreSQL refuses to drop a
    view another view depends on; SQLite would keep a view naming a dropped one). Listed in
    ``projections.all_views()``.
    """

    def __init__(self, name: str, requires: Sequence[str], sql: str, postgres: str | None = None):
        self.name = name
        self.requires = tuple(requires)
        """Public table names the view reads."""
        self.sql = sql
        """The ``SELECT`` (portable SQL, or SQLite's when ``postgres`` is given)."""
        self.postgres = postgres
        """PostgreSQL's ``SELECT`` where the two dialects differ (aggregates, JSON)."""

    def create(self, dialect: str) -> str:
        select = self.postgres if dialect == "postgres" and self.postgres is not None else self.sql
        return f"CREATE VIEW {self.name} AS {select.strip()}"
