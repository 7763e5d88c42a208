-- eventstore migration: per-subject keys for erasure by crypto-shredding (docs/events.md, "Erasure")
-- destructive: false
-- down-destructive: true
-- up
CREATE TABLE subject_keys (
    subject_id TEXT PRIMARY KEY,
    key_hex    TEXT,
    created_at TEXT NOT NULL,
    erased_at  TEXT,
    erased_by  TEXT
);
-- down
DROP TABLE subject_keys;
