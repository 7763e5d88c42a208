-- eventstore migration: the append lock (docs/postgres.md, "How appends stay gapless and chained")
-- destructive: false
-- down-destructive: false
-- up
-- Appends take LOCK TABLE append_lock IN EXCLUSIVE MODE. PostgreSQL lets a role take that
-- lock only with UPDATE, DELETE or TRUNCATE on the table, so a role without write rights
-- (an auditor) cannot delay appends, as it could with the advisory lock used before.
-- The table holds no rows: it exists only to be locked.
CREATE TABLE append_lock ();
-- down
DROP TABLE append_lock;
