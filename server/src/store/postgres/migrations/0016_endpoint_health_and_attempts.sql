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

-- `callback_on: "every_attempt"`: each failed attempt with retries to
-- follow publishes a callback too; `attempts_published` is the last attempt
-- whose callback (or outcome) is published. The outcome publisher finds the
-- rest through the partial index, which holds only such jobs with an
-- attempt still to publish.
ALTER TABLE jobs ADD COLUMN callback_every_attempt boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN attempts_published integer NOT NULL DEFAULT 0;
CREATE INDEX jobs_attempts_unpublished ON jobs (id)
    WHERE callback_every_attempt AND attempts_published < attempt;

-- A queue's default for its messages' `callback_on`.
ALTER TABLE queues ADD COLUMN callback_on text NOT NULL DEFAULT 'outcome'
    CHECK (callback_on IN ('outcome', 'every_attempt'));
