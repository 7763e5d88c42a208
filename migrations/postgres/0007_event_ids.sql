-- eventstore migration: event ids, for idempotent appends (docs/format.md, "Event ids")
-- destructive: false
-- down-destructive: true
-- up
-- NULL for events appended without an id (and for every event written before this migration).
ALTER TABLE events ADD COLUMN event_id TEXT CHECK (event_id IS NULL OR length(event_id) > 0);

-- An id names one event in its stream: a retry finds the original here.
CREATE UNIQUE INDEX events_stream_event_id ON events (stream_id, event_id) WHERE event_id IS NOT NULL;
-- down
DROP INDEX events_stream_event_id;
ALTER TABLE events DROP COLUMN event_id;
