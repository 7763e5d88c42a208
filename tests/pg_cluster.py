"""A throwaway PostgreSQL cluster for the tests (or the server named by EVENTSTORE_TEST_PG).

With server binaries installed (initdb/pg_ctl on PATH or under /usr/lib/postgresql),
one cluster is started per test session in a temporary directory on a free
loopback port (as the ``postgres`` user when running as root), with fsync on for
honest durability, and deleted at the end. Each test gets a fresh database,
cloned from a migrated template so that creating it is cheap. Without a server, the
PostgreSQL variants skip; with ``EVENTSTORE_REQUIRE_PG=1`` (CI) they fail instead.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

_server: str | None = None
_reason: str | None = None
_cluster_dir: str | None = None
_counter = itertools.count()
TEMPLATE = "eventstore_template"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _start_cluster() -> str:
    global _cluster_dir
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed and EVENTSTORE_TEST_PG is not set"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as the postgres user")
    base = tempfile.mkdtemp(prefix="eventstore-pg-")
    _cluster_dir = base
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = os.path.join(base, "data"), _free_port()
    subprocess.run(
        _as_postgres(
            [
                initdb,
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8" if _locale_ok() else "--no-locale",
            ]
        ),
        check=True,
        capture_output=True,
    )
    opts = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c shared_buffers=64MB -c max_connections=200 "
        "-c fsync=on -c synchronous_commit=on"
    )
    subprocess.run(
        _as_postgres([pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(base, "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    atexit.register(_stop_cluster, pg_ctl, data, base)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _locale_ok() -> bool:
    return os.path.exists("/usr/lib/locale/C.utf8") or os.path.exists("/usr/lib/locale/C.UTF-8")


def _stop_cluster(pg_ctl: str, data: str, base: str) -> None:
    subprocess.run(_as_postgres([pg_ctl, "-D", data, "-m", "immediate", "stop"]), capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def server_url() -> str:
    """The admin URL of the test server, starting the throwaway cluster on first use."""
    global _server, _reason
    if _server is None and _reason is None:
        try:
            _server = os.environ.get("EVENTSTORE_TEST_PG") or _start_cluster()
            _make_template(_server)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
            detail = (
                e.stderr.decode(errors="replace").strip()
                if isinstance(e, subprocess.CalledProcessError) and e.stderr
                else str(e)
            )
            _reason = f"no PostgreSQL for the tests: {detail}"
    if _server is None:
        missing(_reason or "no PostgreSQL")
    return _server


def require_pg() -> bool:
    """True when EVENTSTORE_REQUIRE_PG is set (CI): a missing PostgreSQL fails the tests."""
    return os.environ.get("EVENTSTORE_REQUIRE_PG", "") not in ("", "0")


def missing(reason: str) -> None:
    """Skip a PostgreSQL test for ``reason``, or fail it under EVENTSTORE_REQUIRE_PG=1."""
    if require_pg():
        pytest.fail(f"EVENTSTORE_REQUIRE_PG is set and {reason}", pytrace=False)
    pytest.skip(reason)


def _url_for(server: str, dbname: str) -> str:
    head, _, _ = server.rpartition("/")
    return f"{head}/{dbname}"


def _make_template(server: str) -> None:
    import psycopg

    from eventstore import EventStore

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    EventStore.open(_url_for(server, TEMPLATE)).close()


def fresh_database_url(request: pytest.FixtureRequest | None = None) -> str:
    """A new, migrated, empty database on the test server."""
    import psycopg

    server = server_url()
    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    url = _url_for(server, name)

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    if request is not None:
        request.addfinalizer(drop)
    return url


__all__ = ["fresh_database_url", "server_url", "require_pg", "missing", "Path"]
