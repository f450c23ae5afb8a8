-- Queues (seed 004): named sets of jobs that share flow control. A job names
-- its queue by `jobs.queue`; names are unique per organization and never
-- change. Every organization has `default`; this migration also makes a
-- queue for every name its jobs and schedules already use, with no limit,
-- so that nothing already accepted is held back by the upgrade.
CREATE TABLE queues (
    id                      uuid PRIMARY KEY,            -- UUIDv7
    organization_id         uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                    text NOT NULL,
    concurrency             integer CHECK (concurrency BETWEEN 1 AND 100),  -- NULL: no limit
    retries                 integer NOT NULL CHECK (retries >= 0),
    ordering                text NOT NULL CHECK (ordering IN ('fifo', 'lifo')),
    failure_mode            text NOT NULL CHECK (failure_mode IN ('continue', 'block', 'pause')),
    status                  text NOT NULL CHECK (status IN ('active', 'paused')),
    blocked                 boolean NOT NULL DEFAULT false,
    rate_limit              integer CHECK (rate_limit > 0),
    rate_period_seconds     integer CHECK (rate_period_seconds > 0),
    key_concurrency         integer CHECK (key_concurrency > 0),
    key_rate_limit          integer CHECK (key_rate_limit > 0),
    key_rate_period_seconds integer CHECK (key_rate_period_seconds > 0),
    signing_secret_id       uuid REFERENCES signing_secrets (id),
    default_target_url      text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT queues_name UNIQUE (organization_id, name),
    CHECK ((rate_limit IS NULL) = (rate_period_seconds IS NULL)),
    CHECK ((key_rate_limit IS NULL) = (key_rate_period_seconds IS NULL))
);

-- UUIDv7 of now for the rows made here (PostgreSQL 15 has no uuidv7()):
-- a random UUID with the time in milliseconds over its first 48 bits.
INSERT INTO queues (id, organization_id, name, retries, ordering, failure_mode, status)
SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
           PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
           FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid,
       organization_id, name, 3, 'fifo', 'continue', 'active'
FROM (
    SELECT id AS organization_id, 'default' AS name FROM organizations
    UNION
    SELECT DISTINCT organization_id, queue FROM jobs
    UNION
    SELECT DISTINCT organization_id, template->>'queue' FROM schedules
    WHERE template->>'queue' IS NOT NULL
) used
ORDER BY organization_id, name;
