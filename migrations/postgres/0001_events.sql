-- eventstore migration: the append-only event log (docs/format.md, docs/postgres.md)
-- destructive: false
-- down-destructive: true
-- up
CREATE TABLE events (
    position        BIGINT  PRIMARY KEY CHECK (position >= 1),
    stream_id       TEXT    NOT NULL CHECK (length(stream_id) > 0),
    version         BIGINT  NOT NULL CHECK (version >= 1),
    type            TEXT    NOT NULL CHECK (length(type) > 0),
    data            BYTEA,
    metadata        BYTEA,
    data_digest     BYTEA   NOT NULL CHECK (length(data_digest) = 32),
    metadata_digest BYTEA   NOT NULL CHECK (length(metadata_digest) = 32),
    recorded_at     TEXT    NOT NULL,
    prev_hash       BYTEA   NOT NULL CHECK (length(prev_hash) = 32),
    hash            BYTEA   NOT NULL CHECK (length(hash) = 32)
);

CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version);

CREATE FUNCTION eventstore_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eventstore: the events table is append-only; % is not allowed', TG_OP;
END
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION eventstore_reject_change();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION eventstore_reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_reject_change();
-- down
DROP TABLE events;
DROP FUNCTION eventstore_reject_change();
