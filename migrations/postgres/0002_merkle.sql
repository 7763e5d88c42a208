-- eventstore migration: the Merkle tree over the log, and signed checkpoints (docs/audit.md)
-- destructive: false
-- down-destructive: true
-- up
CREATE TABLE merkle_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT  NOT NULL,
    hash  BYTEA   NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE merkle_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL
);

CREATE TABLE checkpoints (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin     TEXT   NOT NULL,
    tree_size  BIGINT NOT NULL,
    root       BYTEA  NOT NULL CHECK (length(root) = 32),
    note       TEXT   NOT NULL,
    created_at TEXT   NOT NULL
);

CREATE INDEX checkpoints_origin_size ON checkpoints (origin, tree_size);
-- down
DROP TABLE checkpoints;
DROP TABLE merkle_state;
DROP TABLE merkle_nodes;
