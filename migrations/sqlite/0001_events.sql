-- eventstore migration: the append-only event log (docs/format.md)
-- destructive: false
-- down-destructive: true
-- up
CREATE TABLE events (
    position        INTEGER PRIMARY KEY CHECK (position >= 1),
    stream_id       TEXT    NOT NULL CHECK (length(stream_id) > 0),
    version         INTEGER NOT NULL CHECK (version >= 1),
    type            TEXT    NOT NULL CHECK (length(type) > 0),
    data            BLOB,
    metadata        BLOB,
    data_digest     BLOB    NOT NULL CHECK (length(data_digest) = 32),
    metadata_digest BLOB    NOT NULL CHECK (length(metadata_digest) = 32),
    recorded_at     TEXT    NOT NULL,
    prev_hash       BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash            BLOB    NOT NULL CHECK (length(hash) = 32)
);

CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'eventstore: the events table is append-only; UPDATE is not allowed');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'eventstore: the events table is append-only; DELETE is not allowed');
END;
-- down
DROP TABLE events;
