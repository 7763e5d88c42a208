"""An append whose commit outcome the store cannot tell (AppendOutcomeUnknown: the connection broke
during COMMIT) is answered 503 ``append_outcome_unknown`` naming what to look for, and the client
raises it instead of resending the events blindly (a resend could write them twice)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from eventstore import NewEvent
from eventstore.client import Client
from eventstore.errors import AppendOutcomeUnknown
from tests.service.conftest import Running


def _unknown(*args: Any, **kwargs: Any) -> Any:
    _unknown.calls += 1  # type: ignore[attr-defined]
    raise AppendOutcomeUnknown(
        "the connection broke during COMMIT", first_position=5, last_position=5, last_hash="ab" * 32
    )


def test_unknown_outcome_is_a_503_that_says_so_and_is_not_resent(
    running_sqlite: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unknown.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setattr(running_sqlite.store, "append_many", _unknown)
    monkeypatch.setattr(running_sqlite.store, "append", _unknown)
    r = httpx.post(
        f"{running_sqlite.url}/v1/streams/agent-7/a/events",
        headers=running_sqlite.headers("agent7"),
        json={"events": [{"type": "note", "data": {}}]},
    )
    assert r.status_code == 503 and r.headers["retry-after"]
    err = r.json()["error"]
    assert err["code"] == "append_outcome_unknown" and "outcome is unknown" in err["message"]
    assert (err["first_position"], err["last_position"], err["last_hash"]) == (5, 5, "ab" * 32)

    calls = _unknown.calls  # type: ignore[attr-defined]
    with Client(running_sqlite.url, running_sqlite.tokens["agent7"], retries=3) as client:
        with pytest.raises(AppendOutcomeUnknown) as e:
            client.append("agent-7/a", [NewEvent(type="note", data={})])
    assert e.value.last_position == 5 and e.value.last_hash == "ab" * 32
    assert _unknown.calls == calls + 1  # type: ignore[attr-defined]  # sent once, never resent blindly
