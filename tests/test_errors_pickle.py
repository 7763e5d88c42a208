"""Every public exception survives pickling (multiprocessing sends errors between processes)."""

from __future__ import annotations

import importlib
import pickle
import pkgutil

import pytest

import eventstore
import projections
from eventstore.errors import (
    AppendOutcomeUnknown,
    CredentialRefused,
    DatabaseDamaged,
    EventStoreError,
    InvalidEvent,
    WrongExpectedVersion,
)

SAMPLES: dict[str, BaseException] = {
    "WrongExpectedVersion": WrongExpectedVersion("session-1", 0, 3),
    "InvalidEvent": InvalidEvent("must be a string", path="$.data.x", line=7),
    "AppendOutcomeUnknown": AppendOutcomeUnknown(
        "the connection broke during COMMIT", first_position=5, last_position=7, last_hash="ab" * 32
    ),
    "DatabaseDamaged": DatabaseDamaged("database disk image is malformed", page=12),
    "CredentialRefused": CredentialRefused("agent-7", "revoked"),
}


def _all_error_classes() -> list[type[EventStoreError]]:
    for package in (eventstore, projections):
        for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if m.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(m.name)
            except ImportError:  # an optional dependency (e.g. psycopg) is missing
                continue
    out, todo = [], [EventStoreError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_round_trips_through_pickle(cls: type[EventStoreError]) -> None:
    error = SAMPLES.get(cls.__name__)
    if error is None:
        try:
            error = cls("something went wrong")
        except TypeError:
            pytest.fail(f"{cls.__name__} needs constructor arguments: add a sample to SAMPLES")
    error.add_note("a note")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(error, protocol))
        assert type(back) is cls
        assert str(back) == str(error) and back.args == error.args
        assert vars(back) == vars(error)


def test_wrong_expected_version_keeps_its_fields() -> None:
    back = pickle.loads(pickle.dumps(WrongExpectedVersion("s", 1, 2)))
    assert (back.stream_id, back.expected, back.actual) == ("s", 1, 2)
    assert str(back) == "wrong expected version for stream 's': expected 1, actual 2"
