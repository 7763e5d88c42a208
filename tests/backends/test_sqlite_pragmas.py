"""SQLite ``cache_size`` and ``mmap_size``: options of ``EventStore.open`` or URL parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import ConfigurationError, EventStore, NewEvent
from eventstore.backends.sqlite import DEFAULT_CACHE_SIZE, DEFAULT_MMAP_SIZE


def _pragmas(store: EventStore) -> tuple[int, int]:
    q = store.backend.query
    return q("PRAGMA cache_size")[0][0], q("PRAGMA mmap_size")[0][0]


def test_defaults_and_options_reach_every_connection(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with EventStore.open(db) as store:
        assert _pragmas(store) == (DEFAULT_CACHE_SIZE, DEFAULT_MMAP_SIZE)
        store.append("s", [NewEvent(type="note", data={})])
    with EventStore.open(db, cache_size=-8000, mmap_size=1 << 24) as store:
        assert _pragmas(store) == (-8000, 1 << 24)
        assert store.verify().ok
    with EventStore.open(db, readonly=True, cache_size=500) as store:  # read-only opens too
        assert _pragmas(store)[0] == 500


def test_url_parameters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/u.db?cache_size=-4000&mmap_size=1048576"
    with EventStore.open(url) as store:
        assert _pragmas(store) == (-4000, 1 << 20)
        store.append("s", [NewEvent(type="note", data={})])
    assert (tmp_path / "u.db").exists()  # the parameters are not part of the file name
    with EventStore.open(url, cache_size=-3000) as store:  # the argument wins over the URL
        assert _pragmas(store) == (-3000, 1 << 20) and store.head()[0] == 1


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("sqlite:///{d}/x.db?cache=1", {}, "unknown SQLite URL parameter 'cache'"),
        ("sqlite:///{d}/x.db?mmap_size=lots", {}, "mmap_size must be an integer, not 'lots'"),
        ("{d}/x.db", {"mmap_size": -1}, "mmap_size must be >= 0"),
        ("{d}/x.db", {"cache_size": "big"}, "cache_size must be an integer"),
    ],
)
def test_bad_values_are_one_line_errors_and_create_nothing(
    tmp_path: Path, url: str, kwargs: dict, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        EventStore.open(url.format(d=tmp_path), **kwargs)
    assert not (tmp_path / "x.db").exists()


def test_postgres_refuses_sqlite_options() -> None:
    with pytest.raises(ConfigurationError, match="SQLite options"):
        EventStore.open("postgresql://nobody@127.0.0.1:1/none", cache_size=-8000)
