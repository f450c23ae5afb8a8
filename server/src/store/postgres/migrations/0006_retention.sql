-- Retention: how long finished jobs (and their executions) are kept, per
-- final status, in seconds; NULL keeps them forever. One row.
--
-- This leaves every period NULL: a store that already held jobs keeps them
-- all until its operator sets periods (`chronos retention`), rather than
-- losing its history on upgrade. A store the migration runner creates from
-- nothing gets the defaults instead (postgres/database.rs).
CREATE TABLE retention (
    id                int PRIMARY KEY CHECK (id = 1),
    completed_seconds bigint CHECK (completed_seconds > 0),
    failed_seconds    bigint CHECK (failed_seconds > 0),
    cancelled_seconds bigint CHECK (cancelled_seconds > 0),
    set_at            timestamptz                -- when an operator last set them; NULL: never
);
INSERT INTO retention (id) VALUES (1);
