"""Where a SQLite store can live: ``:memory:``, ``sqlite:/abs`` and friends, new directories."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from eventstore import ConfigurationError, EventStore, NewEvent
from eventstore.backends.sqlite import path_from_url
from projections import run_all


def msg(sid: str, mid: str) -> NewEvent:
    return NewEvent(
        type="message.appended", data={"session_id": sid, "message_id": mid, "role": "user", "content": "x"}
    )


@pytest.mark.parametrize(
    "url,path",
    [
        ("sqlite:///rel.db", "rel.db"),
        ("sqlite:////abs/x.db", "/abs/x.db"),
        ("sqlite:/abs/x.db", "/abs/x.db"),
        ("sqlite:rel.db", "rel.db"),
        (":memory:", ":memory:"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite::memory:", ":memory:"),
        ("plain/path.db", "plain/path.db"),
    ],
)
def test_url_forms(url: str, path: str) -> None:
    assert path_from_url(url) == path


@pytest.mark.parametrize("url", ["sqlite:", "sqlite://host/x.db", ""])
def test_bad_urls_are_refused_with_the_url_named(url: str) -> None:
    with pytest.raises(ConfigurationError, match="SQLite"):
        path_from_url(url)


def test_sqlite_single_slash_url_opens_the_absolute_path(tmp_path: Path) -> None:
    with EventStore.open(f"sqlite:{tmp_path}/a.db") as store:
        store.append("s", [msg("s", "m1")])
    with EventStore.open(tmp_path / "a.db") as store:
        assert store.head()[0] == 1


def test_missing_parent_directories_are_created_but_not_for_read_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no database"):
        EventStore.open(tmp_path / "x" / "y" / "r.db", readonly=True)
    assert not (tmp_path / "x").exists()
    with EventStore.open(f"sqlite:{tmp_path}/x/y/z.db") as store:
        store.append("s", [msg("s", "m1")])
    assert (tmp_path / "x" / "y" / "z.db").is_file()


def test_memory_store_works_end_to_end_and_is_private() -> None:
    with EventStore.open(":memory:") as a, EventStore.open(":memory:") as b:
        a.append(
            "session-1",
            [msg("1", "m1"), msg("1", "m2")],
        )
        assert b.head() == (0, None)  # each open is its own database
        assert run_all(a)["messages"] == 2
        assert a.backend.query("SELECT status, message_count FROM sessions") == [("unknown", 2)]
        assert a.verify().ok
    with EventStore.open(":memory:") as c:  # gone after close
        assert c.head() == (0, None)


def test_memory_store_serves_concurrent_threads() -> None:
    """Readers, writers and a projector at once: they wait for each other, none fails with 'locked'."""
    errors: list[BaseException] = []
    with EventStore.open(":memory:", durability="process") as store:

        def guarded(f: object) -> threading.Thread:
            def run() -> None:
                try:
                    f()  # type: ignore[operator]
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)

            return threading.Thread(target=run)

        writers = [
            guarded(lambda i=i: [store.append(f"s{i}", [msg(str(i), f"m{k}")]) for k in range(100)]) for i in range(3)
        ]
        reader = guarded(lambda: [list(store.read_all()) for _ in range(50)])
        projector = guarded(lambda: [run_all(store) for _ in range(10)])
        threads = [*writers, reader, projector]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        run_all(store)
        assert store.backend.query("SELECT sum(message_count) FROM sessions") == [(300,)]


def test_memory_store_cannot_be_opened_read_only() -> None:
    with pytest.raises(ConfigurationError, match="in-memory"):
        EventStore.open(":memory:", readonly=True)
