"""Deployment files: the Dockerfile builds and serves (where a container engine runs), the systemd
units call options that exist, serve's TLS and logs."""

from __future__ import annotations

import configparser
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest

from eventstore.cli import main

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _engine() -> str | None:
    """Why there is no usable container engine, or None when there is one."""
    docker = shutil.which("docker") or shutil.which("podman")
    if docker is None:
        return "no container runtime (docker/podman) installed"
    try:
        out = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "the container engine did not answer 'docker info'"
    if out.returncode != 0:
        return f"the container engine is not running: {(out.stderr or out.stdout).strip().splitlines()[-1]}"
    return None


@pytest.mark.slow
def test_dockerfile_builds_and_serves() -> None:
    reason = _engine()
    if reason is not None:
        pytest.skip(reason)
    docker = shutil.which("docker") or shutil.which("podman")
    assert docker is not None
    subprocess.run([docker, "build", "-t", "eventstore-test", str(ROOT)], check=True, timeout=900)
    port = free_port()
    cid = subprocess.run(
        [docker, "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8787", "eventstore-test"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.5)
        pytest.fail("the container did not become ready")
    finally:
        subprocess.run([docker, "rm", "-f", cid], capture_output=True)


def test_dockerfile_copies_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"


@pytest.mark.parametrize("unit", ["eventstore.service", "eventstore-projector.service"])
def test_systemd_units_use_existing_commands_and_options(unit: str) -> None:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.read(ROOT / "deploy" / "systemd" / unit)
    argv = shlex.split(cp["Service"]["ExecStart"])[1:]
    ctx = main.make_context("eventstore", list(argv), resilient_parsing=True)
    cmd: click.Command = main
    rest = list(argv)
    while isinstance(cmd, click.Group) and rest and rest[0] in cmd.commands:
        cmd = cmd.commands[rest.pop(0)]
    assert isinstance(cmd, click.Command) and not isinstance(cmd, click.Group), argv
    cmd.make_context(cmd.name or "", rest)  # raises on an unknown option
    assert ctx is not None
    assert unit.split(".")[0] in (ROOT / "docs" / "operations.md").read_text()


@pytest.mark.slow
def test_serve_with_tls_and_json_logs(tmp_path: Path) -> None:
    """--certfile/--keyfile serve HTTPS; --log-json writes one JSON object per line, without secrets."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    import ssl

    tls = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    db = str(tmp_path / "t.db")
    exe = [sys.executable, "-c", "from eventstore.cli import main; main()", "--db", db]
    secret = subprocess.run(
        [*exe, "token", "create", "a", "--role", "admin"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    port = free_port()
    proc = subprocess.Popen(
        [
            *exe,
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--certfile",
            str(tmp_path / "cert.pem"),
            "--keyfile",
            str(tmp_path / "key.pem"),
            "--log-json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"https://127.0.0.1:{port}/healthz", verify=tls, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        r = httpx.post(
            f"https://127.0.0.1:{port}/v1/streams/s/events",
            verify=tls,
            json={"events": [{"type": "t"}]},
            headers={"Authorization": f"Bearer {secret}", "X-Request-Id": "req-42"},
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
        bad = httpx.get(f"https://127.0.0.1:{port}/v1/events", verify=tls, headers={"Authorization": "Bearer es_guess"})
        assert bad.status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    req = [x for x in records if x.get("request_id") == "req-42"]
    assert req and req[0]["status"] == 200 and req[0]["principal"] == "a"
    assert secret not in err and "es_guess" not in err


@pytest.mark.slow
def test_serve_project_runs_the_projector_and_reports_its_lag(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    exe = [sys.executable, "-c", "from eventstore.cli import main; main()", "--db", db]
    secret = subprocess.run(
        [*exe, "token", "create", "a", "--role", "admin"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    port = free_port()
    proc = subprocess.Popen(
        [*exe, "serve", "--bind", f"127.0.0.1:{port}", "--project", "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        event = {"type": "session.started", "data": {"session_id": "s1", "model": "m"}}
        assert (
            httpx.post(
                f"{base}/v1/streams/session-s1/events",
                json={"events": [event]},
                headers={"Authorization": f"Bearer {secret}"},
            ).status_code
            == 200
        )
        deadline = time.monotonic() + 15
        while True:
            lags = [
                line
                for line in httpx.get(f"{base}/metrics").text.splitlines()
                if line.startswith("eventstore_projection_lag_events{")
            ]
            if lags and all(line.endswith(" 0.0") for line in lags):
                break
            assert time.monotonic() < deadline, lags
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    from eventstore import EventStore

    with EventStore.open(db) as store:
        assert store.backend.query("SELECT count(*) FROM sessions")[0][0] == 1


@pytest.mark.slow
def test_service_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eventstore.service import demo

    demo.run(str(tmp_path / "demo.db"), agents=2)
    out = capsys.readouterr().out
    assert "was refused" in out and "metadata.principal = 'agent-1'" in out
    assert "receipt of position" in out and ": OK" in out and "verify: OK" in out
