"""Every statement the store runs on its side tables (the stored Merkle tree, checkpoints,
subject keys), in one place, in the portable dialect every backend takes.

Portable means: ``?`` placeholders (PostgreSQL's backend turns them into ``%s`` outside
string literals), ``ON CONFLICT ... DO UPDATE/NOTHING`` and ``excluded.`` (SQLite 3.24+ and
PostgreSQL 9.5+ alike), no dialect functions. The backend conformance suite
(``eventstore.testing.backend_contract``) runs each of them on every backend. The ``events``
table is written only by ``Writer.insert``; read models have their own SQL (projections/).
"""

from __future__ import annotations

# -- the stored Merkle tree (eventstore.audit.merkle) -------------------------------------
MERKLE_SYNCED_SIZE = "SELECT size FROM merkle_state WHERE id = 1"
MERKLE_PUT_NODE = (
    "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?) "
    "ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash"
)
"""Overwrites: a stored node is a cache computed from the log, never kept over the log's value."""
MERKLE_ADVANCE = (
    "INSERT INTO merkle_state (id, size) VALUES (1, ?) ON CONFLICT (id) DO UPDATE "
    "SET size = CASE WHEN merkle_state.size < excluded.size THEN excluded.size ELSE merkle_state.size END"
)
"""Never moves back: concurrent syncs write the same nodes and the larger size wins."""
MERKLE_NODE = "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?"
MERKLE_ALL_NODES = "SELECT level, idx, hash FROM merkle_nodes"
MERKLE_RESET = ("DELETE FROM merkle_nodes", "DELETE FROM merkle_state")
LEAF_HASHES = "SELECT hash FROM events WHERE position > ? AND position <= ? ORDER BY position"
"""Entry hashes of leaves [start, end): positions start+1 .. end."""

# -- signed checkpoints (eventstore.audit.log) ----------------------------------------------
CHECKPOINT_INSERT = "INSERT INTO checkpoints (origin, tree_size, root, note, created_at) VALUES (?, ?, ?, ?, ?)"
CHECKPOINTS = "SELECT origin, tree_size, root, note FROM checkpoints ORDER BY id"
CHECKPOINTS_OF_ORIGIN = "SELECT origin, tree_size, root, note FROM checkpoints WHERE origin = ? ORDER BY id"
CHECKPOINT_NEWEST_OF_ORIGIN = (
    "SELECT id, tree_size, root, note FROM checkpoints WHERE origin = ? ORDER BY tree_size DESC, id DESC LIMIT 1"
)
CHECKPOINT_AT_OR_BELOW = (
    "SELECT tree_size, root FROM checkpoints WHERE tree_size <= ? ORDER BY tree_size DESC, id DESC LIMIT 1"
)
CHECKPOINT_AT_OR_ABOVE = "SELECT tree_size, root FROM checkpoints WHERE tree_size >= ? ORDER BY tree_size, id LIMIT 1"
CHECKPOINT_ROOTS = "SELECT id, origin, tree_size, root FROM checkpoints ORDER BY id"

# -- per-subject keys (eventstore.shredding) ------------------------------------------------
SUBJECT_KEY = "SELECT key_hex FROM subject_keys WHERE subject_id = ?"
SUBJECT_KEY_CREATE = (
    "INSERT INTO subject_keys (subject_id, key_hex, created_at) VALUES (?, ?, ?) ON CONFLICT (subject_id) DO NOTHING"
)
"""Two processes creating one subject's key at once: the first wins, both then read it."""
SUBJECT_KEY_ERASE = (
    "INSERT INTO subject_keys (subject_id, key_hex, created_at, erased_at, erased_by) "
    "VALUES (?, NULL, ?, ?, ?) ON CONFLICT (subject_id) DO UPDATE SET key_hex = NULL, "
    "erased_at = excluded.erased_at, erased_by = excluded.erased_by"
)
"""Destroys the key (or records a tombstone for a subject never seen): run in the erasure's transaction."""


def subject_keys_in(n: int) -> str:
    """The keys of ``n`` subjects (``n`` >= 1 parameters)."""
    return f"SELECT subject_id, key_hex FROM subject_keys WHERE subject_id IN ({','.join('?' * n)})"


# -- retention and legal holds (eventstore.retention, eventstore.holds) -----------------------
RETENTION_POLICIES = (
    "SELECT kind, pattern, keep_seconds, keep, set_at, set_by FROM retention_policies ORDER BY kind, pattern"
)
RETENTION_POLICY_PUT = (
    "INSERT INTO retention_policies (kind, pattern, keep_seconds, keep, set_at, set_by) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, pattern) DO UPDATE SET keep_seconds = excluded.keep_seconds, keep = excluded.keep, "
    "set_at = excluded.set_at, set_by = excluded.set_by"
)
"""Run in the transaction that appends retention.policy_set."""
RETENTION_POLICY_DELETE = "DELETE FROM retention_policies WHERE kind = ? AND pattern = ?"
RETENTION_SETTING = "SELECT value FROM retention_settings WHERE name = ?"
RETENTION_SETTING_PUT = (
    "INSERT INTO retention_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
HOLDS = (
    "SELECT id, kind, pattern, reason, placed_at, placed_by, released_at, released_by FROM legal_holds "
    "ORDER BY placed_at, id"
)
HOLDS_ACTIVE = "SELECT id, kind, pattern, reason FROM legal_holds WHERE released_at IS NULL ORDER BY placed_at, id"
HOLD_PLACE = "INSERT INTO legal_holds (id, kind, pattern, reason, placed_at, placed_by) VALUES (?, ?, ?, ?, ?, ?)"
HOLD_RELEASE = "UPDATE legal_holds SET released_at = ?, released_by = ? WHERE id = ? AND released_at IS NULL"
RETENTION_RUN_START = (
    "INSERT INTO retention_runs (id, started_at, heartbeat, by_whom, reason, through) VALUES (?, ?, ?, ?, ?, ?)"
)
RETENTION_RUN_PROGRESS = (
    "UPDATE retention_runs SET heartbeat = ?, count = ?, from_position = ?, to_position = ?, policies = ? WHERE id = ?"
)
"""Run in each prune batch's transaction: the progress commits with the payloads it removed."""
RETENTION_RUNS_STALE = (
    "SELECT id, by_whom, reason, through, count, from_position, to_position, policies FROM retention_runs "
    "WHERE heartbeat < ? ORDER BY started_at"
)
RETENTION_RUN_DONE = "DELETE FROM retention_runs WHERE id = ?"
"""Run in the transaction that appends the run's retention.pruned event."""
PRUNE_CANDIDATES = (
    "SELECT position, stream_id, type, recorded_at FROM events "
    "WHERE position > ? AND position <= ? AND data IS NOT NULL ORDER BY position LIMIT ?"
)
PRUNE_CANDIDATES_WITH_DATA = (
    "SELECT position, stream_id, type, recorded_at, data FROM events "
    "WHERE position > ? AND position <= ? AND data IS NOT NULL ORDER BY position LIMIT ?"
)
"""With the payload, to find the subjects of a subject hold in its personal envelopes."""
PAYLOADS_BETWEEN = "SELECT position, data FROM events WHERE position >= ? AND position <= ?"
PRUNE_PAYLOADS_BETWEEN = "UPDATE events SET data = NULL WHERE position >= ? AND position <= ? AND data IS NOT NULL"
"""The one UPDATE the append-only guard allows (migration 0008): payloads to NULL, nothing else.
Run on ranges whose every payload-bearing row is to be pruned."""
