-- eventstore migration: the Merkle tree over the log, and signed checkpoints (docs/audit.md)
-- destructive: false
-- down-destructive: true
-- up
-- Hashes of complete aligned subtrees of 2^level leaves (level >= 4): derived data,
-- rebuilt from the events table at any time; proofs made from it are checked by clients.
CREATE TABLE merkle_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE merkle_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL
);

-- Every checkpoint the store signed, so that it never signs one inconsistent with an earlier one.
CREATE TABLE checkpoints (
    id         INTEGER PRIMARY KEY,
    origin     TEXT    NOT NULL,
    tree_size  INTEGER NOT NULL,
    root       BLOB    NOT NULL CHECK (length(root) = 32),
    note       TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

CREATE INDEX checkpoints_origin_size ON checkpoints (origin, tree_size);
-- down
DROP TABLE checkpoints;
DROP TABLE merkle_state;
DROP TABLE merkle_nodes;
