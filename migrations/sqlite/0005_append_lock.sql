-- eventstore migration: nothing on SQLite (kept so that a schema version means the same on both dialects)
-- destructive: false
-- down-destructive: false
-- up
-- PostgreSQL's 0005 adds the append_lock table; SQLite has no roles and serialises
-- appends with BEGIN IMMEDIATE.
SELECT 1;
-- down
SELECT 1;
