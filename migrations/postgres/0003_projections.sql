-- eventstore migration: projector bookkeeping (docs/projections.md)
-- destructive: false
-- down-destructive: true
-- up
-- One row per projection generation. The active generation's tables are what the
-- public views (sessions, messages, ...) show; a rebuild fills a new generation beside it.
CREATE TABLE projection_state (
    name           TEXT    NOT NULL,
    generation     BIGINT  NOT NULL,
    version        BIGINT  NOT NULL,
    active         BIGINT  NOT NULL DEFAULT 0,
    position       BIGINT  NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL DEFAULT 'idle',
    error          TEXT,
    error_position BIGINT,
    needs_rebuild  BIGINT  NOT NULL DEFAULT 0,
    owner          TEXT,
    lease_until    DOUBLE PRECISION,
    updated_at     TEXT,
    PRIMARY KEY (name, generation)
);
-- down
DROP TABLE projection_state;
