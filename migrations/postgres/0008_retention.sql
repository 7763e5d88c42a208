-- eventstore migration: retention policies, legal holds, and pruning of payloads (docs/operations.md, "Retention")
-- destructive: false
-- down-destructive: true
-- up
-- The policies in force: one per selector ('streams' glob or event 'type'). Every change is also
-- appended to stream 'retention' (retention.policy_set, ...), in the same transaction.
CREATE TABLE retention_policies (
    kind         TEXT    NOT NULL CHECK (kind IN ('streams', 'type')),
    pattern      TEXT    NOT NULL CHECK (length(pattern) > 0),
    keep_seconds BIGINT  NOT NULL CHECK (keep_seconds >= 0),
    keep         TEXT    NOT NULL,
    set_at       TEXT    NOT NULL,
    set_by       TEXT    NOT NULL,
    PRIMARY KEY (kind, pattern)
);
-- Settings of retention (the floor: the shortest retention any policy may ask for).
CREATE TABLE retention_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Legal holds: a held event's payload is never pruned; erasure of a held subject is refused.
CREATE TABLE legal_holds (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('streams', 'subject')),
    pattern     TEXT NOT NULL CHECK (length(pattern) > 0),
    reason      TEXT NOT NULL,
    placed_at   TEXT NOT NULL,
    placed_by   TEXT NOT NULL,
    released_at TEXT,
    released_by TEXT
);
-- A prune in progress: its progress commits with each batch, so that a prune killed midway is
-- recorded (retention.pruned, interrupted) by the next one.
CREATE TABLE retention_runs (
    id            TEXT PRIMARY KEY,
    started_at    TEXT NOT NULL,
    heartbeat     DOUBLE PRECISION NOT NULL,
    by_whom       TEXT NOT NULL,
    reason        TEXT,
    through       BIGINT,
    count         BIGINT NOT NULL DEFAULT 0,
    from_position BIGINT,
    to_position   BIGINT,
    policies      TEXT NOT NULL DEFAULT '{}'
);

-- The append-only guard allows exactly one change: a payload set to NULL (pruned), every other
-- column unchanged. Any other UPDATE, every DELETE and TRUNCATE, is refused as before.
CREATE FUNCTION eventstore_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.data IS NULL
       AND (NEW.position, NEW.stream_id, NEW.version, NEW.type, NEW.metadata, NEW.data_digest,
            NEW.metadata_digest, NEW.recorded_at, NEW.prev_hash, NEW.hash, NEW.event_id)
           IS NOT DISTINCT FROM
           (OLD.position, OLD.stream_id, OLD.version, OLD.type, OLD.metadata, OLD.data_digest,
            OLD.metadata_digest, OLD.recorded_at, OLD.prev_hash, OLD.hash, OLD.event_id)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'eventstore: the events table is append-only; UPDATE is not allowed (except pruning a payload to NULL)';
END
$$;

DROP TRIGGER events_no_update ON events;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION eventstore_guard_update();
-- down
DROP TRIGGER events_no_update ON events;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION eventstore_reject_change();
DROP FUNCTION eventstore_guard_update();
DROP TABLE retention_runs;
DROP TABLE legal_holds;
DROP TABLE retention_settings;
DROP TABLE retention_policies;
