"""Schema evolution: stored older versions are upcast on read; stored bytes never change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventstore import EventStore, NewEvent
from eventstore.cli import main
from eventstore.mapping import Catalogue
from eventstore.upcasting import REGISTRY, Registry


@pytest.fixture
def registry() -> Iterator[Registry]:
    """The process-wide registry (what the CLI's stores use), restored after the test."""
    saved = REGISTRY.snapshot()
    yield REGISTRY
    REGISTRY.restore(saved)


def test_add_and_rename_fields_with_upcasters(sqlite_url: str) -> None:
    """A store given its own catalogue: its upcasters are its own, not the process's."""
    catalogue = Catalogue()
    registry = catalogue.registry
    sqlite_store = EventStore.open(sqlite_url, catalogue=catalogue)
    # version 1 of "note.written" was {"text"}
    sqlite_store.append("n", [NewEvent(type="note.written", data={"text": "hello"})])
    raw_before = sqlite_store.backend.row_at(1)

    # version 2 renames text -> body and adds lang (docs/events.md, "Evolving an event type")
    registry.set_version("note.written", 2)

    @registry.register("note.written", from_version=1)
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        data["body"] = data.pop("text")
        data.setdefault("lang", "en")
        return data

    sqlite_store.append("n", [NewEvent(type="note.written", data={"body": "bonjour", "lang": "fr"})])
    old, new = list(sqlite_store.read_stream("n"))
    assert (old.data, old.schema_version) == ({"body": "hello", "lang": "en"}, 2)
    assert (new.data, new.schema_version) == ({"body": "bonjour", "lang": "fr"}, 2)
    assert new.metadata == {"schema_version": 2}
    assert sqlite_store.backend.row_at(1) == raw_before  # stored bytes untouched
    assert sqlite_store.verify().ok
    with EventStore.open(sqlite_url) as default:  # the agent catalogue knows nothing of note.written v2
        assert next(default.read_stream("n")).data == {"text": "hello"}
    sqlite_store.close()


def test_a_store_validates_against_its_own_catalogue(tmp_path: Path) -> None:
    import msgspec

    from eventstore.errors import InvalidEvent

    class Note(msgspec.Struct, forbid_unknown_fields=True):
        body: str

    with EventStore.open(tmp_path / "a.db", catalogue=Catalogue({"note.written": Note})) as store:
        with pytest.raises(InvalidEvent, match=r"\$\.data\.body"):
            store.append("n", [NewEvent(type="note.written", data={"body": 1})])
        store.append("m", [NewEvent(type="message.appended", data={"anything": True})])  # not its vocabulary
    with EventStore.open(tmp_path / "b.db") as agents, pytest.raises(InvalidEvent):
        agents.append("m", [NewEvent(type="message.appended", data={"anything": True})])


def test_events_check_reports_what_cannot_be_upcast(tmp_path: Path, registry: Registry) -> None:
    db = str(tmp_path / "c.db")
    with EventStore.open(db) as store:
        store.append("n", [NewEvent(type="note.written", data={"text": "a"})])
    ok = CliRunner().invoke(main, ["--db", db, "events", "check"])
    assert ok.exit_code == 0 and "1 events checked" in ok.stdout
    registry.set_version("note.written", 3)
    registry.register("note.written", 1)(lambda d: {"body": d["text"]})  # no 2 -> 3 step
    r = CliRunner().invoke(main, ["--db", db, "events", "check", "--json"])
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["problems"][0]["position"] == 1
    assert "from schema version 2 to 3" in report["problems"][0]["error"]
    with EventStore.open(db) as store:  # a read does not stop on it: the event says why
        (event,) = store.read_all()
    assert event.unreadable is not None and "from schema version 2 to 3" in event.unreadable


def test_split_a_field_with_an_upcaster(sqlite_store: EventStore, registry: Registry) -> None:
    """Version 1 of "contact.added" held {"name": "Ada Lovelace"}; version 2 splits it in two."""
    sqlite_store.append("c", [NewEvent(type="contact.added", data={"name": "Ada Lovelace"})])
    registry.set_version("contact.added", 2)

    @registry.register("contact.added", from_version=1)
    def split_name(data: dict[str, Any]) -> dict[str, Any]:
        first, _, last = data.pop("name").partition(" ")
        return {**data, "first_name": first, "last_name": last}

    (event,) = sqlite_store.read_all()
    assert event.data == {"first_name": "Ada", "last_name": "Lovelace"} and event.schema_version == 2
    assert sqlite_store.check_events().ok
