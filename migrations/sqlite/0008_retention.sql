-- eventstore migration: retention policies, legal holds, and pruning of payloads (docs/operations.md, "Retention")
-- destructive: false
-- down-destructive: true
-- up
-- The policies in force: one per selector ('streams' glob or event 'type'). Every change is also
-- appended to stream 'retention' (retention.policy_set, ...), in the same transaction.
CREATE TABLE retention_policies (
    kind         TEXT    NOT NULL CHECK (kind IN ('streams', 'type')),
    pattern      TEXT    NOT NULL CHECK (length(pattern) > 0),
    keep_seconds INTEGER NOT NULL CHECK (keep_seconds >= 0),
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
    through       INTEGER,
    count         INTEGER NOT NULL DEFAULT 0,
    from_position INTEGER,
    to_position   INTEGER,
    policies      TEXT NOT NULL DEFAULT '{}'
);

-- The append-only guard allows exactly one change: a payload set to NULL (pruned), every other
-- column unchanged (position too, whether an UPDATE names it or its rowid aliases). Any other
-- UPDATE, and every DELETE, is refused as before. One trigger, still named events_no_update:
-- dropping it is what tampering takes, as before. A column added later must join the list.
DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
WHEN NOT (
    NEW.data IS NULL
    AND NEW.position IS OLD.position AND NEW.stream_id IS OLD.stream_id AND NEW.version IS OLD.version
    AND NEW.type IS OLD.type AND NEW.metadata IS OLD.metadata AND NEW.data_digest IS OLD.data_digest
    AND NEW.metadata_digest IS OLD.metadata_digest AND NEW.recorded_at IS OLD.recorded_at
    AND NEW.prev_hash IS OLD.prev_hash AND NEW.hash IS OLD.hash AND NEW.event_id IS OLD.event_id
)
BEGIN
    SELECT RAISE(ABORT, 'eventstore: the events table is append-only; UPDATE is not allowed (except pruning a payload to NULL)');
END;
-- down
DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'eventstore: the events table is append-only; UPDATE is not allowed');
END;
DROP TABLE retention_runs;
DROP TABLE legal_holds;
DROP TABLE retention_settings;
DROP TABLE retention_policies;
