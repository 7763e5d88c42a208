"""Least-privilege group roles for a PostgreSQL store, granted in one place.

``apply(store)`` (``eventstore roles apply``), run by the owner of the store's tables,
creates the group roles below if missing (NOLOGIN) and sets their privileges on the
store's schema to exactly ``GRANTS``: everything else they held there is revoked, so
running it again changes nothing. People and services log in as their own roles and
are made members: ``GRANT eventstore_appender TO alice``.

- ``eventstore_appender``: append and read the log. It may create the key of a new
  data subject (INSERT on ``subject_keys``) but not update one (erasure is the owner's),
  and may take the append lock (UPDATE on the row-less ``append_lock``).
- ``eventstore_projector``: read the log, own the read models (CREATE on the schema:
  each generation's tables and the views over them) and their bookkeeping
  (``projection_state``).
- ``eventstore_auditor``: read everything; change nothing, and cannot delay appends:
  the append lock needs UPDATE on ``append_lock``, which it does not have.

Nobody but the owner writes ``merkle_nodes``, ``merkle_state`` or ``checkpoints``
(``eventstore checkpoint`` runs as the owner) or updates ``subject_keys`` (erasure); nor the
retention tables, nor prunes payloads (UPDATE on ``events``): retention, holds and prune are
the owner's (admin) operations; auditors read those tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .errors import ConfigurationError, UserError

if TYPE_CHECKING:
    from .store import EventStore

APPENDER, PROJECTOR, AUDITOR = "eventstore_appender", "eventstore_projector", "eventstore_auditor"
ROLES = (APPENDER, PROJECTOR, AUDITOR)

TABLES = (
    "events",
    "schema_migrations",
    "subject_keys",
    "merkle_nodes",
    "merkle_state",
    "checkpoints",
    "projection_state",
    "append_lock",
    "retention_policies",
    "retention_settings",
    "legal_holds",
    "retention_runs",
)
"""The store's own tables (migrations/postgres); read models are the projector's."""

SCHEMA = "SCHEMA"
GRANTS: dict[str, list[tuple[str, str]]] = {
    APPENDER: [
        ("USAGE", SCHEMA),
        ("SELECT, INSERT", "events"),
        ("SELECT", "schema_migrations"),
        ("SELECT, INSERT", "subject_keys"),  # a key for a new subject; never UPDATE
        ("UPDATE", "append_lock"),  # LOCK TABLE ... IN EXCLUSIVE MODE needs it; the table has no rows
    ],
    PROJECTOR: [
        ("USAGE, CREATE", SCHEMA),
        ("SELECT", "events"),
        ("SELECT", "schema_migrations"),
        ("SELECT", "subject_keys"),  # read models show personal fields until erased
        ("SELECT, INSERT, UPDATE, DELETE", "projection_state"),
    ],
    AUDITOR: [
        ("USAGE", SCHEMA),
        ("SELECT", "events"),
        ("SELECT", "schema_migrations"),
        ("SELECT", "subject_keys"),
        ("SELECT", "merkle_nodes"),
        ("SELECT", "merkle_state"),
        ("SELECT", "checkpoints"),
        ("SELECT", "projection_state"),
        ("SELECT", "retention_policies"),  # what may be pruned, and what is held: part of an audit
        ("SELECT", "retention_settings"),
        ("SELECT", "legal_holds"),
        ("SELECT", "retention_runs"),
    ],
}
"""Exactly what each group role may do in the store's schema (the SQL of the grants is built from this)."""


class RolesReport(msgspec.Struct, frozen=True, kw_only=True):
    schema: str
    created: list[str]
    grants: dict[str, list[str]]
    notes: list[str]


def statements(schema: str, quote: Any) -> list[tuple[str, str]]:
    """(role, SQL) of the REVOKE and GRANT statements; ``quote`` quotes an identifier."""
    s = quote(schema)
    out: list[tuple[str, str]] = []
    for role, grants in GRANTS.items():
        r = quote(role)
        out.append((role, f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}"))
        out.append((role, f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}"))
        out.append((role, f"REVOKE ALL ON SCHEMA {s} FROM {r}"))
        for privileges, obj in grants:
            target = f"SCHEMA {s}" if obj == SCHEMA else f"{s}.{quote(obj)}"
            out.append((role, f"GRANT {privileges} ON {target} TO {r}"))
    return out


def _describe(privileges: str, obj: str, schema: str) -> str:
    return f"{privileges} on {'schema ' + schema if obj == SCHEMA else schema + '.' + obj}"


def apply(store: EventStore, schema: str | None = None) -> RolesReport:
    """Create the group roles if missing and grant each exactly ``GRANTS``, in one transaction."""
    if store.backend.dialect != "postgres":
        raise UserError("roles are a PostgreSQL feature; a SQLite store is protected by the permissions of its file")
    import psycopg
    from psycopg import sql

    def quote(name: str) -> str:
        return sql.Identifier(name).as_string(None)

    backend: Any = store.backend
    notes: list[str] = []
    created: list[str] = []
    with backend.pool.connection() as conn:
        try:
            with conn.transaction():
                if schema is None:
                    row = conn.execute(
                        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                        "c.relnamespace WHERE c.oid = to_regclass('events')"
                    ).fetchone()
                    if row is None:
                        raise ConfigurationError(
                            "no events table on the search path: name the store's schema with --schema"
                        )
                    schema = str(row[0])
                missing = conn.execute(
                    "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(quote_ident(%s) || '.' || "
                    "quote_ident(t)) IS NULL",
                    (list(TABLES), schema),
                ).fetchall()
                if missing:
                    raise ConfigurationError(
                        f"schema {schema!r} lacks the store's table {missing[0][0]!r}: "
                        "name the store's schema and apply its migrations first"
                    )
                for role in ROLES:
                    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                        conn.execute(f"CREATE ROLE {quote(role)} NOLOGIN")
                        created.append(role)
                for _role, stmt in statements(schema, quote):
                    conn.execute(stmt)
                # Read models the projector creates later are readable by auditors. Needs membership
                # in the projector role (or superuser); without it, say so instead of failing.
                try:
                    with conn.transaction():
                        conn.execute(
                            f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(PROJECTOR)} IN SCHEMA "
                            f"{quote(schema)} GRANT SELECT ON TABLES TO {quote(AUDITOR)}"
                        )
                        for (name,) in conn.execute(
                            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = %s AND c.relkind IN ('r', 'v') AND "
                            "pg_get_userbyid(c.relowner) = %s",
                            (schema, PROJECTOR),
                        ).fetchall():
                            conn.execute(f"GRANT SELECT ON {quote(schema)}.{quote(name)} TO {quote(AUDITOR)}")
                except psycopg.errors.InsufficientPrivilege:
                    notes.append(
                        f"auditors cannot read read models: only a superuser or a member of {PROJECTOR} "
                        f"can let them (ALTER DEFAULT PRIVILEGES FOR ROLE {PROJECTOR} IN SCHEMA {schema} "
                        f"GRANT SELECT ON TABLES TO {AUDITOR})"
                    )
        except psycopg.Error as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(
                f"cannot apply roles (run 'roles apply' as the owner of the store's tables, "
                f"with CREATEROLE): {first}; nothing was changed"
            ) from None
    assert schema is not None
    return RolesReport(
        schema=schema,
        created=created,
        grants={role: [_describe(p, o, schema) for p, o in GRANTS[role]] for role in ROLES},
        notes=notes,
    )
