-- Schedules: recurring jobs. Same tables, columns and indexes as
-- postgres/migrations/0005_schedules.sql, in SQLite's types. Each fire
-- inserts a job with schedule_id and fire_at set; the unique index on
-- (schedule_id, fire_at) makes a second job for the same due time impossible.

CREATE TABLE schedules (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('active', 'paused', 'archived')),
    timing           TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    template         TEXT NOT NULL,
    catch_up         TEXT NOT NULL CHECK (catch_up IN ('skip', 'one', 'all')),
    overlap          TEXT NOT NULL CHECK (overlap IN ('allow', 'skip', 'wait')),
    failure_notify   INTEGER NOT NULL DEFAULT 0,
    anchor_at        TEXT NOT NULL,
    next_run_at      TEXT,
    waiting_fire_at  TEXT,
    last_run_at      TEXT,
    last_job_id      TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX schedules_by_org ON schedules (organization_id, id DESC);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE status = 'active';
CREATE INDEX schedules_waiting ON schedules (waiting_fire_at) WHERE waiting_fire_at IS NOT NULL;

ALTER TABLE jobs ADD COLUMN fire_at TEXT;
CREATE UNIQUE INDEX jobs_schedule_fire ON jobs (schedule_id, fire_at) WHERE fire_at IS NOT NULL;
