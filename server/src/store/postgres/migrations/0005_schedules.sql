-- Schedules: recurring jobs. Each fire inserts an ordinary job with
-- schedule_id and fire_at (the due time it is for) set; the unique index on
-- (schedule_id, fire_at) makes a second job for the same due time
-- impossible, whichever server process or retry tries to create it.

CREATE TABLE schedules (
    id               uuid PRIMARY KEY,            -- UUIDv7
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('active', 'paused', 'archived')),
    timing           jsonb NOT NULL,              -- {"type": "cron", "expr"} or {"type": "interval", ...}
    timezone         text NOT NULL,
    template         jsonb NOT NULL,              -- what each fire's job is: handler, payload, delivery, …
    catch_up         text NOT NULL CHECK (catch_up IN ('skip', 'one', 'all')),
    overlap          text NOT NULL CHECK (overlap IN ('allow', 'skip', 'wait')),
    failure_notify   boolean NOT NULL DEFAULT false,
    anchor_at        timestamptz NOT NULL,        -- intervals count from here
    next_run_at      timestamptz,                 -- null unless active
    waiting_fire_at  timestamptz,                 -- overlap = wait: a fire held until the last job ends
    last_run_at      timestamptz,
    last_job_id      uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_by_org ON schedules (organization_id, id DESC);
-- The scheduler's look for due schedules.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE status = 'active';
CREATE INDEX schedules_waiting ON schedules (waiting_fire_at) WHERE waiting_fire_at IS NOT NULL;

ALTER TABLE jobs ADD COLUMN fire_at timestamptz;
CREATE UNIQUE INDEX jobs_schedule_fire ON jobs (schedule_id, fire_at) WHERE fire_at IS NOT NULL;
