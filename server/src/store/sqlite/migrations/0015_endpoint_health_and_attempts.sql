-- Endpoint health: as postgres/migrations/0016_endpoint_health_and_attempts.sql.
CREATE TABLE endpoints (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    scheme               TEXT NOT NULL,
    target_host          TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since        TEXT,
    last_failure_at      TEXT,
    last_error           TEXT,
    disabled_at          TEXT,
    disabled_reason      TEXT,
    healthy_since        TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (organization_id, scheme, target_host)
);
CREATE INDEX endpoints_disabled ON endpoints (organization_id, target_host)
    WHERE disabled_at IS NOT NULL;

ALTER TABLE jobs ADD COLUMN held_reason TEXT;
CREATE INDEX jobs_scheduled_due_unheld ON jobs (run_at)
    WHERE status = 'scheduled' AND held_reason IS NULL;
DROP INDEX jobs_scheduled_due;
CREATE INDEX jobs_held ON jobs (organization_id, target_host) WHERE held_reason IS NOT NULL;

ALTER TABLE executions ADD COLUMN response_body_encoding TEXT;

ALTER TABLE jobs ADD COLUMN callback_every_attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN attempts_published INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_attempts_unpublished ON jobs (id)
    WHERE callback_every_attempt AND attempts_published < attempt;

-- A queue's default for its messages' `callback_on`.
ALTER TABLE queues ADD COLUMN callback_on text NOT NULL DEFAULT 'outcome'
    CHECK (callback_on IN ('outcome', 'every_attempt'));
