-- Endpoint health (issue 18): each (organization, scheme, host:port) its
-- push deliveries go to, with its run of consecutive failures. Disabled
-- endpoints hold their deliveries: `scheduled` jobs with a `held_reason`,
-- which promotion passes over until the endpoint is enabled.
CREATE TABLE endpoints (
    id                   uuid PRIMARY KEY,
    organization_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    scheme               text NOT NULL,
    target_host          text NOT NULL,
    consecutive_failures bigint NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    last_failure_at      timestamptz,
    last_error           text,
    disabled_at          timestamptz,
    disabled_reason      text,
    healthy_since        timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    UNIQUE (organization_id, scheme, target_host)
);
CREATE INDEX endpoints_disabled ON endpoints (organization_id, target_host)
    WHERE disabled_at IS NOT NULL;

ALTER TABLE jobs ADD COLUMN held_reason text;
-- Promotion reads due jobs that are not held; held jobs wait apart.
CREATE INDEX jobs_scheduled_due_unheld ON jobs (run_at)
    WHERE status = 'scheduled' AND held_reason IS NULL;
DROP INDEX jobs_scheduled_due;
CREATE INDEX jobs_held ON jobs (organization_id, target_host) WHERE held_reason IS NOT NULL;

-- A response body that is not UTF-8 is kept as base64 ('base64'); NULL is
-- UTF-8 text.
ALTER TABLE executions ADD COLUMN response_body_encoding text;
