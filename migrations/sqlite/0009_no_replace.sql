-- eventstore migration: the append-only guard also refuses INSERT OR REPLACE (docs/format.md)
-- destructive: false
-- down-destructive: false
-- up
-- SQLite's REPLACE conflict resolution deletes the conflicting row without firing DELETE
-- triggers (unless a connection enables recursive_triggers), so `INSERT OR REPLACE` or
-- `REPLACE INTO` could rewrite any stored event past events_no_update and events_no_delete.
-- An insert that would collide with a stored event on any unique key (position, stream and
-- version, stream and event id) is refused before REPLACE can act; a plain INSERT that
-- collides fails on the constraint anyway, so appends are unaffected.
CREATE TRIGGER events_no_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE position = NEW.position)
    OR EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id AND version = NEW.version)
    OR (NEW.event_id IS NOT NULL
        AND EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id AND event_id = NEW.event_id))
BEGIN
    SELECT RAISE(ABORT, 'eventstore: the events table is append-only; an insert may not replace a stored event');
END;
-- down
DROP TRIGGER events_no_replace;
