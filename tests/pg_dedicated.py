"""A PostgreSQL cluster of a test's own, which it may stop, restart and crash, and a TCP proxy
between the store and the server that can cut a connection right around COMMIT.

Fault tests use these instead of the shared session cluster (tests/pg_cluster.py), whose
server every other test needs alive. Both skip the test when PostgreSQL binaries are absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest

from tests import pg_cluster


class Cluster:
    """A throwaway cluster on a free loopback port (as the ``postgres`` user when root)."""

    def __init__(self) -> None:
        initdb, self.pg_ctl = pg_cluster._bin("initdb"), pg_cluster._bin("pg_ctl")
        if not initdb or not self.pg_ctl:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.base = tempfile.mkdtemp(prefix="eventstore-pgfault-")
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.data, self.port = os.path.join(self.base, "data"), pg_cluster._free_port()
        subprocess.run(
            pg_cluster._as_postgres(
                [initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"]
            ),
            check=True,
            capture_output=True,
        )
        self.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str, user: str = "postgres", port: int | None = None, password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{port or self.port}/{dbname}"

    def _ctl(self, *args: str) -> None:
        opts = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c shared_buffers=32MB "
            "-c max_connections=60 -c fsync=on"
        )
        subprocess.run(
            pg_cluster._as_postgres(
                [self.pg_ctl, "-D", self.data, "-o", opts, "-l", os.path.join(self.base, "log"), "-w", *args]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self, mode: str = "immediate") -> None:
        """Stop (``immediate``: a crash, with recovery on start) and start again."""
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    yield c
    c.destroy()


class Proxy:
    """Forwards TCP between the store and the server; can cut the connection carrying COMMIT.

    ``cut = "before_commit"``: the server never receives COMMIT (the transaction rolls back).
    ``cut = "after_commit"``: the server commits, and the client never hears (the reply is
    dropped). Either way the cut happens once, then ``cut`` resets. ``refuse = True``: new
    connections are closed at once (the server looks down).
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.cut: str | None = None
        self.refuse = False
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            state = {"commit_sent": False, "dead": False}
            threading.Thread(target=self._pump, args=(client, server, True, state), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False, state), daemon=True).start()

    def _kill(self, a: socket.socket, b: socket.socket, state: dict[str, bool]) -> None:
        state["dead"] = True
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool, state: dict[str, bool]) -> None:
        while not state["dead"]:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._kill(src, dst, state)
                return
            with self._lock:
                if upstream and self.cut and b"COMMIT\x00" in data:
                    if self.cut == "before_commit":
                        self.cut, self.cuts = None, self.cuts + 1
                        self._kill(src, dst, state)
                        return
                    state["commit_sent"] = True
                elif (
                    not upstream and state["commit_sent"] and self.cut == "after_commit" and b"COMMIT\x00" in data
                ):  # the server's "COMMIT" command tag: it committed
                    self.cut, self.cuts = None, self.cuts + 1
                    self._kill(src, dst, state)
                    return
            try:
                dst.sendall(data)
            except OSError:
                self._kill(src, dst, state)
                return

    def close(self) -> None:
        self._closed = True
        self._listener.close()
