-- eventstore migration: service credentials and idempotency keys (docs/api.md, docs/operations.md)
-- destructive: false
-- down-destructive: true
-- up
-- One row per credential of 'eventstore serve'. The secret is never stored: only its SHA-256.
-- Names are never reused (a revoked credential keeps its row), so the 'principal' recorded
-- in an event's metadata names one credential for ever.
CREATE TABLE credentials (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    patterns    TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  DOUBLE PRECISION,
    revoked_at  TEXT,
    revoked_by  TEXT
);
-- The first answer to each (credential, Idempotency-Key) of the service, kept at least 24 hours.
CREATE TABLE idempotency_keys (
    principal    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
-- down
DROP TABLE idempotency_keys;
DROP TABLE credentials;
