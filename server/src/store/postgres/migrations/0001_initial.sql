-- Chronos schema, version 1: organizations, API keys, jobs and executions.
-- Later versions add columns and tables; they never rewrite these.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id              text PRIMARY KEY,            -- the public part: chrns_<id>_<secret>
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    secret_sha256   bytea NOT NULL,              -- SHA-256 of a 32-byte random secret
    scopes          text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX api_keys_by_org ON api_keys (organization_id, created_at);

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,           -- UUIDv7: id order is creation order
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL,
    handler          text,                       -- null for push messages that have none
    payload          jsonb NOT NULL DEFAULT 'null',
    queue            text NOT NULL DEFAULT 'default',
    priority         integer NOT NULL DEFAULT 0, -- higher runs first
    status           text NOT NULL CHECK (status IN
                        ('scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    delivery_type    text NOT NULL CHECK (delivery_type IN ('pull', 'push')),
    delivery         jsonb NOT NULL,             -- the full delivery object, push target included
    run_at           timestamptz NOT NULL,
    attempt          integer NOT NULL DEFAULT 0,  -- attempts started, ever
    attempt_base     integer NOT NULL DEFAULT 0,  -- attempts before the last manual retry
    max_retries      integer NOT NULL,
    timeout_seconds  integer NOT NULL,
    schedule_id      uuid,
    idempotency_key  text,
    result           jsonb,
    last_error       text,
    lease_token      uuid,                       -- fencing token of the current attempt
    lease_expires_at timestamptz,
    worker_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT jobs_idempotency_key UNIQUE (organization_id, idempotency_key)
);

-- The due-job queries. Partial, so only queued jobs are in them and they stay
-- small however many finished jobs pile up; pull and push are separate so that
-- workers and push delivery never take each other's jobs.
CREATE INDEX jobs_queued_pull ON jobs (organization_id, handler, priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'pull';
CREATE INDEX jobs_queued_push ON jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'push';
-- The sweeper: promoting due scheduled jobs, ending expired running attempts.
CREATE INDEX jobs_scheduled_due ON jobs (run_at) WHERE status = 'scheduled';
CREATE INDEX jobs_running_deadline ON jobs (lease_expires_at) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_lease_token ON jobs (lease_token) WHERE lease_token IS NOT NULL;
-- Listing, newest first.
CREATE INDEX jobs_by_org ON jobs (organization_id, id DESC);
CREATE INDEX jobs_by_schedule ON jobs (organization_id, schedule_id, id DESC)
    WHERE schedule_id IS NOT NULL;

CREATE TABLE executions (
    id                 uuid PRIMARY KEY,          -- UUIDv7
    job_id             uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt            integer NOT NULL,
    status             text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'timed_out', 'released')),
    lease_token        uuid,
    worker_id          text,
    http_status        integer,
    response_body      text,
    response_truncated boolean NOT NULL DEFAULT false,
    error              text,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);
CREATE INDEX executions_by_job ON executions (job_id, id DESC);
-- Acks, fails and extends find their attempt by token; a token that is no
-- longer the job's current lease is still found here (409, not 404).
CREATE UNIQUE INDEX executions_by_lease_token ON executions (lease_token);

-- Workers connected over WebSocket, one row per worker id: what `GET
-- /v1/workers` lists, and how any server process knows whether a worker
-- holding leases is still there (a reconnect to any process keeps them).
CREATE TABLE workers (
    organization_id   uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    worker_id         text NOT NULL,
    session_id        uuid NOT NULL,              -- the current (or last) session
    handlers          text[] NOT NULL,
    max_in_flight     integer NOT NULL,
    sdk               text NOT NULL,
    connected_at      timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    disconnected_at   timestamptz,
    PRIMARY KEY (organization_id, worker_id)
);
CREATE INDEX jobs_by_worker ON jobs (organization_id, worker_id) WHERE status = 'running';
