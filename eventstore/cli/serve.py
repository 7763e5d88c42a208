"""``eventstore serve``: the HTTP ingest service (docs/api.md, docs/operations.md)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import click

from ..errors import ConfigurationError, UserError
from .base import Context, main, pass_ctx


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"bad --bind {bind!r}: use HOST:PORT, e.g. 127.0.0.1:8787")
    return host.strip("[]") or "127.0.0.1", int(port)


@main.command()
@click.option("--bind", default="127.0.0.1:8787", show_default=True, help="HOST:PORT to listen on.")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--log-json", is_flag=True, help="Logs as one JSON object per line on stderr.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log every request.")
@click.option("--project", "run_projector", is_flag=True, help="Also run the projector in this process.")
@click.option(
    "--durability",
    type=click.Choice(["full", "process"]),
    default="full",
    show_default=True,
    help="full: an answered append survives power loss; process: a crash of the process.",
)
@click.option(
    "--writer",
    type=click.Choice(["process", "queue", "threads"]),
    default="process",
    show_default=True,
    help="The queue writer in a child process, a writer thread fed by a queue, or a thread hop per "
    "request (see docs/performance.md).",
)
@click.option(
    "--max-body",
    "max_body",
    type=click.IntRange(1024),
    default=4 << 20,
    show_default=True,
    help="Largest request body in bytes (413 beyond).",
)
@click.option(
    "--max-events",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Most events in one request (413 beyond).",
)
@click.option(
    "--max-pending",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Append requests queued at once; beyond it 503 with Retry-After.",
)
@click.option("--signing-key", type=click.Path(exists=True), help="Checkpoint key: enables POST /v1/checkpoints.")
@click.option(
    "--record-conflicts",
    is_flag=True,
    help="Record each append refused for a wrong expected version (409) as a collision.detected event "
    "in stream 'conflicts', naming the credential.",
)
@click.option(
    "--keep-alive",
    type=click.FloatRange(1),
    default=30.0,
    show_default=True,
    help="Seconds an idle keep-alive connection stays open.",
)
@pass_ctx
def serve(
    ctx: Context,
    bind: str,
    certfile: str | None,
    keyfile: str | None,
    log_json: bool,
    access_log: bool,
    run_projector: bool,
    durability: str,
    writer: str,
    max_body: int,
    max_events: int,
    max_pending: int,
    signing_key: str | None,
    record_conflicts: bool,
    keep_alive: float,
) -> None:
    """Serve HTTP API v1 over the database until SIGTERM or SIGINT.

    One process owns the writer: every connection's appends share commits. On SIGTERM
    it stops accepting, commits and answers what is queued, and exits.
    """
    import uvicorn

    from ..service import Service, ServiceConfig
    from ..service.logs import setup

    if bool(certfile) != bool(keyfile):
        raise UserError("TLS needs both --certfile and --keyfile")
    host, port = parse_bind(bind)
    setup(log_json)
    log = logging.getLogger("eventstore.service")
    config = ServiceConfig(
        max_body_bytes=max_body,
        max_events_per_request=max_events,
        max_pending=max_pending,
        writer=writer,
        access_log=access_log,
        signing_key=signing_key,
        record_conflicts=record_conflicts,
    )
    with ctx.open(durability=durability) as store:
        stop = threading.Event()
        threads: list[threading.Thread] = []

        def start_projector() -> None:
            if not run_projector:
                return
            from projections import Runner

            def run() -> None:
                runner = Runner(store)
                try:
                    runner.run_once()
                    runner.follow(stop, poll=1.0)
                except Exception:
                    log.exception("the projector stopped")
                finally:
                    runner.release()

            t = threading.Thread(target=run, name="eventstore-projector", daemon=True)
            t.start()
            threads.append(t)

        def stop_projector() -> None:
            stop.set()
            for t in threads:
                t.join(timeout=10)

        service = Service(store, config, on_start=start_projector, on_stop=stop_projector)
        try:
            import uvloop  # noqa: F401

            loop = "uvloop"
        except ImportError:
            loop = "asyncio"
        options: dict[str, Any] = {}
        if certfile:
            options.update(ssl_certfile=certfile, ssl_keyfile=keyfile)

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                service.begin_shutdown()
                super().handle_exit(sig, frame)

        server = Server(
            uvicorn.Config(
                service.app,
                host=host,
                port=port,
                loop=loop,
                http="httptools",
                lifespan="on",
                log_config=None,
                access_log=False,
                timeout_keep_alive=int(keep_alive),
                timeout_graceful_shutdown=10,
                server_header=False,
                proxy_headers=False,  # nothing here uses the client address; a proxy's headers are not parsed
                **options,
            )
        )
        scheme = "https" if certfile else "http"
        log.info(
            f"serving {store.url if '@' not in store.url else '(postgresql)'} on {scheme}://{host}:{port}",
            extra={"writer": writer, "durability": durability, "project": run_projector},
        )
        try:
            server.run()
        except OSError as e:
            raise ConfigurationError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
