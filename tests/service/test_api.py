"""HTTP API v1 against a running service, on both backends: credentials, bad input, idempotency."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import msgspec
import pytest

from eventstore.service.credentials import Credentials

from .conftest import Running

EVENT = {"type": "note", "data": {"text": "hi"}}


def head(r: Running) -> int:
    return r.store.head()[0]


def post(r: Running, who: str | None, stream: str, body: object, **headers: str) -> httpx.Response:
    h = dict(r.headers(who)) if who else {}
    h.update(headers)
    content = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return httpx.post(f"{r.url}/v1/streams/{stream}/events", content=content, headers=h)


def test_append_returns_durable_receipts_and_records_the_principal(running: Running) -> None:
    body = {"events": [{**EVENT, "metadata": {"principal": "someone-else", "trace": "t1"}}, EVENT]}
    resp = post(running, "agent7", "agent-7/run-1", body)
    assert resp.status_code == 200, resp.text
    receipts = resp.json()["receipts"]
    assert [x["version"] for x in receipts] == [1, 2]
    stored = list(running.store.read_stream("agent-7/run-1"))
    assert [e.metadata for e in stored] == [{"principal": "agent7", "trace": "t1"}, {"principal": "agent7"}]
    assert [e.hash for e in stored] == [x["hash"] for x in receipts]
    assert running.store.verify().ok


@pytest.mark.parametrize(
    "auth, reason",
    [
        (None, "no credential"),
        ("Bearer es_wrong", "not valid"),
        ("Basic abc", "Bearer"),
    ],
)
def test_missing_or_wrong_credentials_are_refused_and_write_nothing(
    running: Running, auth: str | None, reason: str
) -> None:
    before = head(running)
    resp = httpx.post(
        f"{running.url}/v1/streams/agent-7/x/events",
        json={"events": [EVENT]},
        headers={"Authorization": auth} if auth else {},
    )
    assert resp.status_code == 401
    assert reason in resp.json()["error"]["message"]
    assert head(running) == before


def test_revoked_credential_is_refused_from_the_next_request(running: Running) -> None:
    assert post(running, "agent7", "agent-7/a", {"events": [EVENT]}).status_code == 200
    Credentials(running.store).revoke("agent7", revoked_by="test")
    before = head(running)
    resp = post(running, "agent7", "agent-7/a", {"events": [EVENT]})
    assert resp.status_code == 401 and "revoked" in resp.json()["error"]["message"]
    assert head(running) == before
    kinds = [(e.type, e.data["name"]) for e in running.store.read_stream("credentials")]
    assert ("credential.revoked", "agent7") in kinds


def test_expired_credential_is_refused(running: Running) -> None:
    secret, _ = Credentials(running.store).create("brief", "appender", ["x/*"], expires_in=1, created_by="test")
    ok = httpx.post(
        f"{running.url}/v1/streams/x/1/events", json={"events": [EVENT]}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert ok.status_code == 200
    time.sleep(1.1)
    before = head(running)
    resp = httpx.post(
        f"{running.url}/v1/streams/x/1/events", json={"events": [EVENT]}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert resp.status_code == 401 and "expired" in resp.json()["error"]["message"]
    assert head(running) == before


def test_appender_outside_its_streams_gets_403(running: Running) -> None:
    before = head(running)
    for stream in ("agent-8/x", "agent-7", "credentials"):
        resp = post(running, "agent7", stream, {"events": [EVENT]})
        assert resp.status_code == 403, stream
        assert resp.json()["error"]["code"] == "forbidden"
    many = httpx.post(
        f"{running.url}/v1/append",
        headers=running.headers("agent7"),
        json={"appends": [{"stream_id": "agent-7/ok", "events": [EVENT]}, {"stream_id": "other", "events": [EVENT]}]},
    )
    assert many.status_code == 403
    assert head(running) == before
    # reading: only its own streams; never the whole log
    assert httpx.get(f"{running.url}/v1/streams/agent-8/x/events", headers=running.headers("agent7")).status_code == 403
    assert httpx.get(f"{running.url}/v1/events", headers=running.headers("agent7")).status_code == 403
    assert httpx.get(f"{running.url}/v1/streams/agent-7/x/events", headers=running.headers("agent7")).status_code == 200


def test_roles(running: Running) -> None:
    assert post(running, "reader", "agent-7/x", {"events": [EVENT]}).status_code == 403
    assert post(running, "auditor", "agent-7/x", {"events": [EVENT]}).status_code == 403
    assert httpx.get(f"{running.url}/v1/events", headers=running.headers("auditor")).status_code == 403
    assert httpx.get(f"{running.url}/v1/events", headers=running.headers("reader")).status_code == 200
    assert (
        httpx.get(f"{running.url}/v1/proofs/inclusion?position=1", headers=running.headers("reader")).status_code == 403
    )
    assert (
        httpx.get(f"{running.url}/v1/proofs/inclusion?position=1", headers=running.headers("auditor")).status_code
        == 200
    )
    assert post(running, "admin", "anything", {"events": [EVENT]}).status_code == 200


@pytest.mark.parametrize(
    "body, status, code, path",
    [
        (b"{not json", 400, "invalid_json", "$"),
        ({"events": "x"}, 400, "invalid_request", "$.events"),
        ({"events": [{"type": 5, "data": {}}]}, 400, "invalid_request", "$.events[0].type"),
        ({"events": [EVENT, {"type": "note", "data": []}]}, 400, "invalid_request", "$.events[1].data"),
        ({"events": [EVENT], "expected_version": "1"}, 400, "invalid_request", "$.expected_version"),
        ({"events": [EVENT], "extra": 1}, 400, "invalid_request", "$"),
        ({"events": [EVENT, {**EVENT, "id": 5}]}, 400, "invalid_request", "$.events[1].id"),
        ({"events": []}, 400, "invalid_request", "$.events"),
        (
            {"events": [EVENT, {"type": "metric.recorded", "data": {"metric": "m", "value": "x"}}]},
            400,
            "invalid_event",
            "$.events[1].data.value",
        ),
        ({"events": [{"type": "", "data": {}}]}, 400, "invalid_event", "$.events[0]"),
        ({"events": [EVENT, {**EVENT, "subject": "alice"}]}, 400, "invalid_event", "$.events[1].subject"),
        ({"events": [{"type": "credential.created", "data": {}}]}, 403, "forbidden", "$.events[0].type"),
        ({"events": [EVENT, {"type": "hold.released", "data": {}}]}, 403, "forbidden", "$.events[1].type"),
        ({"events": [{"type": "retention.pruned", "data": {}}]}, 403, "forbidden", "$.events[0].type"),
        ({"events": [{"type": "subject.erased", "data": {}}]}, 403, "forbidden", "$.events[0].type"),
        ({"events": [{"type": "archive.created", "data": {}}]}, 403, "forbidden", "$.events[0].type"),
    ],
)
def test_bad_bodies_are_refused_with_the_path_and_write_nothing(
    running: Running, body: object, status: int, code: str, path: str
) -> None:
    before = head(running)
    resp = post(running, "agent7", "agent-7/bad", body)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert (err["code"], err["path"]) == (code, path), err
    assert head(running) == before


def test_oversize_bodies_get_413_and_write_nothing(running: Running) -> None:
    before = head(running)
    big = {"events": [{"type": "note", "data": {"blob": "x" * (5 << 20)}}]}
    resp = post(running, "agent7", "agent-7/big", big)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    one_event = {"events": [{"type": "note", "data": {"blob": "x" * (2 << 20)}}]}
    resp = post(running, "agent7", "agent-7/big", one_event)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "event_too_large"
    many = {"events": [EVENT] * 1001}
    resp = post(running, "agent7", "agent-7/big", many)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_many_events"
    assert head(running) == before


def test_wrong_expected_version_is_409_with_the_current_version(running: Running) -> None:
    assert post(running, "agent7", "agent-7/ev", {"events": [EVENT], "expected_version": 0}).status_code == 200
    before = head(running)
    resp = post(running, "agent7", "agent-7/ev", {"events": [EVENT], "expected_version": 0})
    assert resp.status_code == 409
    err = resp.json()["error"]
    assert (err["code"], err["expected"], err["actual"], err["path"]) == (
        "wrong_expected_version",
        0,
        1,
        "$.expected_version",
    )
    assert head(running) == before


def test_retried_request_with_idempotency_key_gets_the_first_answer(running: Running) -> None:
    body = {"events": [EVENT]}
    first = post(running, "agent7", "agent-7/idem", body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 200
    after_first = head(running)
    again = post(running, "agent7", "agent-7/idem", body, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert head(running) == after_first
    other = post(running, "agent7", "agent-7/idem", {"events": [EVENT, EVENT]}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert head(running) == after_first
    # another credential's key space is its own
    assert post(running, "admin", "agent-7/idem", body, **{"Idempotency-Key": "k-1"}).status_code == 200


def _lose_the_stored_answers(running: Running) -> None:
    """What a crash within the flush interval does: the events are durable, the answer is not."""
    keys = running.service.idempotency
    keys.flush()
    with keys._lock:
        keys._recent.clear()
    with running.store.backend.transaction() as tx:
        tx.execute("DELETE FROM idempotency_keys")


def test_a_retry_after_the_answer_was_lost_writes_nothing(running: Running) -> None:
    """Events without ids sent with an Idempotency-Key get ids derived from the credential, the
    key and the request: the retry carries the same ids and the store recognises it."""
    single = {"events": [EVENT, {"type": "note", "data": {"n": 2}}]}
    multi = {
        "appends": [{"stream_id": "agent-7/m1", "events": [EVENT]}, {"stream_id": "agent-7/m2", "events": [EVENT]}]
    }
    h = {**running.headers("agent7"), "Idempotency-Key": "lost-1"}
    first = httpx.post(f"{running.url}/v1/streams/agent-7/lost/events", json=single, headers=h)
    h2 = {**running.headers("agent7"), "Idempotency-Key": "lost-2"}
    first_multi = httpx.post(f"{running.url}/v1/append", json=multi, headers=h2)
    assert first.status_code == first_multi.status_code == 200
    written = head(running)
    _lose_the_stored_answers(running)
    again = httpx.post(f"{running.url}/v1/streams/agent-7/lost/events", json=single, headers=h)
    again_multi = httpx.post(f"{running.url}/v1/append", json=multi, headers=h2)
    assert again.status_code == again_multi.status_code == 200
    assert "idempotent-replayed" not in again.headers  # answered by the store, not the stored answer
    assert again.json() == first.json() and again_multi.json() == first_multi.json()
    assert head(running) == written
    ids = [e.id for e in running.store.read_stream("agent-7/lost")]
    assert len(set(ids)) == 2 and all(i is not None and i.startswith("idem-") and len(i) == 37 for i in ids)
    # The same key with another request, once its answer is gone (after the retention), is a new append.
    _lose_the_stored_answers(running)
    other = httpx.post(f"{running.url}/v1/streams/agent-7/lost/events", json={"events": [EVENT]}, headers=h)
    assert other.status_code == 200 and head(running) == written + 1
    # Ids the client gave are kept as they are.
    h3 = {**running.headers("agent7"), "Idempotency-Key": "lost-3"}
    own = {"events": [{**EVENT, "id": "mine"}]}
    assert httpx.post(f"{running.url}/v1/streams/agent-7/own/events", json=own, headers=h3).status_code == 200
    assert [e.id for e in running.store.read_stream("agent-7/own")] == ["mine"]


def test_idempotency_answers_survive_a_restart(backend_url: str) -> None:
    from eventstore import EventStore

    from .conftest import make_tokens, start_service, stop_service

    store = EventStore.open(backend_url)
    tokens = make_tokens(store)
    _, server, url = start_service(store)
    h = {"Authorization": f"Bearer {tokens['agent7']}", "Idempotency-Key": "restart-1"}
    first = httpx.post(f"{url}/v1/streams/agent-7/r/events", json={"events": [EVENT]}, headers=h)
    stop_service(server)
    store.close()
    store = EventStore.open(backend_url)
    _, server, url = start_service(store)
    try:
        n = store.head()[0]
        again = httpx.post(f"{url}/v1/streams/agent-7/r/events", json={"events": [EVENT]}, headers=h)
        assert again.json() == first.json() and store.head()[0] == n
    finally:
        stop_service(server)
        store.close()


def test_multi_stream_append_is_atomic(running: Running) -> None:
    url = f"{running.url}/v1/append"
    post(running, "admin", "s1", {"events": [EVENT]})
    before = head(running)
    resp = httpx.post(
        url,
        headers=running.headers("admin"),
        json={
            "appends": [
                {"stream_id": "s2", "events": [EVENT]},
                {"stream_id": "s1", "events": [EVENT], "expected_version": 0},
            ]
        },
    )
    assert resp.status_code == 409 and resp.json()["error"]["path"] == "$.appends[1].expected_version"
    assert head(running) == before
    resp = httpx.post(
        url,
        headers=running.headers("admin"),
        json={
            "appends": [
                {"stream_id": "s2", "events": [EVENT]},
                {"stream_id": "s1", "events": [EVENT], "expected_version": 1},
            ]
        },
    )
    assert resp.status_code == 200
    assert [[r["stream_id"] for r in rs] for rs in resp.json()["receipts"]] == [["s2"], ["s1"]]


def test_reads_page_and_proofs_and_receipts(running: Running) -> None:
    for i in range(5):
        post(running, "agent7", "agent-7/p", {"events": [{"type": "note", "data": {"i": i}}]})
    h = running.headers("agent7")
    page = httpx.get(f"{running.url}/v1/streams/agent-7/p/events?limit=2&from_version=2", headers=h).json()
    assert [e["data"]["i"] for e in page["events"]] == [1, 2] and page["next"] == 4
    last = httpx.get(f"{running.url}/v1/streams/agent-7/p/events?from_version=4", headers=h).json()
    assert last["next"] is None and len(last["events"]) == 2
    allp = httpx.get(f"{running.url}/v1/events?from_position=1&limit=3", headers=running.headers("reader")).json()
    assert [e["position"] for e in allp["events"]] == [1, 2, 3] and allp["next"] == 4
    receipt = running.store.read_stream("agent-7/p").__next__()
    rec = {k: getattr(receipt, k) for k in ("position", "stream_id", "version", "hash", "prev_hash", "recorded_at")}
    rep = httpx.post(f"{running.url}/v1/receipts/verify", json=rec, headers=running.headers("auditor")).json()
    assert rep["ok"] is True
    rep = httpx.post(
        f"{running.url}/v1/receipts/verify", json={**rec, "hash": "00" * 32}, headers=running.headers("auditor")
    ).json()
    assert rep["ok"] is False and rep["problem"]["kind"] == "hash"
    n = head(running)
    proof = httpx.get(f"{running.url}/v1/proofs/consistency?old=2&new={n}", headers=running.headers("auditor"))
    assert proof.status_code == 200 and proof.json()["new_size"] == n
    assert httpx.get(f"{running.url}/v1/checkpoints/latest", headers=running.headers("auditor")).status_code == 404


def test_health_ready_metrics_openapi(running: Running) -> None:
    post(running, "agent7", "agent-7/m", {"events": [EVENT]})
    httpx.post(
        f"{running.url}/v1/streams/x/events", json={"events": [EVENT]}, headers={"Authorization": "Bearer es_nope"}
    )
    assert httpx.get(f"{running.url}/healthz").json() == {"ok": True}
    assert httpx.get(f"{running.url}/readyz").status_code == 200
    text = httpx.get(f"{running.url}/metrics").text
    assert 'eventstore_credentials_refused_total{reason="unknown"} 1.0' in text
    assert "eventstore_events_appended_total 1.0" in text
    assert "eventstore_append_seconds_bucket" in text
    for secret in running.tokens.values():
        assert secret not in text
    doc = httpx.get(f"{running.url}/v1/openapi.json").json()
    assert "/v1/streams/{stream_id}/events" in doc["paths"]


def test_concurrent_appends_share_commits_and_each_gets_its_receipts(running_sqlite: Running) -> None:
    import concurrent.futures

    r = running_sqlite
    with httpx.Client(headers=r.headers("agent7")) as c:

        def one(i: int) -> list[dict]:
            resp = c.post(
                f"{r.url}/v1/streams/agent-7/c{i % 4}/events", json={"events": [{"type": "note", "data": {"i": i}}]}
            )
            assert resp.status_code == 200, resp.text
            return resp.json()["receipts"]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(200)))
    positions = sorted(x[0]["position"] for x in results)
    assert len(set(positions)) == 200
    for rs in results:
        ev = r.store.backend.row_at(rs[0]["position"])
        assert ev is not None and ev.hash.hex() == rs[0]["hash"]
    assert r.store.verify().ok
    commits = r.service.metrics.commit_events.collect()[0]
    count = next(s.value for s in commits.samples if s.name.endswith("_count"))
    assert count < 200  # requests shared commits


def test_token_cli_prints_secret_once_and_lists_no_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "t.db")
    exe = [sys.executable, "-c", "from eventstore.cli import main; main()"]
    out = subprocess.run(
        [*exe, "--db", db, "token", "create", "a1", "--role", "appender", "--streams", "a/*", "--expires", "30d"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    secret = out.stdout.splitlines()[0]
    assert secret.startswith("es_") and len(secret) >= 3 + 43
    listed = subprocess.run([*exe, "--db", db, "token", "list", "--json"], capture_output=True, text=True)
    assert secret not in listed.stdout and '"name":"a1"' in listed.stdout and '"state":"active"' in listed.stdout
    bad = subprocess.run(
        [*exe, "--db", db, "token", "create", "a2", "--role", "appender"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "needs at least one --streams" in bad.stderr
    rev = subprocess.run([*exe, "--db", db, "token", "revoke", "a1"], capture_output=True, text=True)
    assert rev.returncode == 0
    again = subprocess.run([*exe, "--db", db, "token", "revoke", "a1"], capture_output=True, text=True)
    assert again.returncode == 2 and "revoked already" in again.stderr
    from eventstore import EventStore

    with EventStore.open(db) as s:
        events = list(s.read_stream("credentials"))
        assert [e.type for e in events] == ["credential.created", "credential.revoked"]
        assert secret not in str([e.data for e in events])
        rows = s.backend.query("SELECT secret_hash FROM credentials")
        assert secret not in str(rows)


def test_unknown_endpoint_and_wrong_method_are_json_errors(running: Running) -> None:
    missing = httpx.get(f"{running.url}/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert "GET /v1/nothing-here" in missing.json()["error"]["message"]
    wrong = httpx.delete(f"{running.url}/v1/streams/s/events", headers=running.headers("admin"))
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert wrong.headers["x-request-id"]
