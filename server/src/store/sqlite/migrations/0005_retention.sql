-- Retention: how long finished jobs (and their executions) are kept. Same
-- table as postgres/migrations/0006_retention.sql, in SQLite's types; every
-- period NULL (forever) for a store that already held jobs, the defaults
-- for one the migration runner creates from nothing (sqlite/database.rs).
CREATE TABLE retention (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    completed_seconds INTEGER CHECK (completed_seconds > 0),
    failed_seconds    INTEGER CHECK (failed_seconds > 0),
    cancelled_seconds INTEGER CHECK (cancelled_seconds > 0),
    set_at            TEXT
) STRICT;
INSERT INTO retention (id) VALUES (1);
