-- Chronos schema, version 1, for the embedded store. Same tables, columns and
-- indexes as postgres/migrations/0001_initial.sql, in SQLite's types: ids and
-- timestamps are TEXT (timestamps as 2026-01-02T03:04:05.678Z, which sorts in
-- time order), JSON is TEXT, booleans are INTEGER.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    secret_sha256   BLOB NOT NULL,
    scopes          TEXT NOT NULL,               -- JSON array of scope names
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at      TEXT
) STRICT;
CREATE INDEX api_keys_by_org ON api_keys (organization_id, created_at);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    handler          TEXT,
    payload          TEXT NOT NULL DEFAULT 'null',
    queue            TEXT NOT NULL DEFAULT 'default',
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL CHECK (status IN
                        ('scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    delivery_type    TEXT NOT NULL CHECK (delivery_type IN ('pull', 'push')),
    delivery         TEXT NOT NULL,
    run_at           TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    attempt_base     INTEGER NOT NULL DEFAULT 0,
    max_retries      INTEGER NOT NULL,
    timeout_seconds  INTEGER NOT NULL,
    schedule_id      TEXT,
    idempotency_key  TEXT,
    result           TEXT,
    last_error       TEXT,
    lease_token      TEXT,
    lease_expires_at TEXT,
    worker_id        TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at      TEXT,
    UNIQUE (organization_id, idempotency_key)
) STRICT;

CREATE INDEX jobs_queued_pull ON jobs (organization_id, handler, priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'pull';
CREATE INDEX jobs_queued_push ON jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'push';
CREATE INDEX jobs_scheduled_due ON jobs (run_at) WHERE status = 'scheduled';
CREATE INDEX jobs_running_deadline ON jobs (lease_expires_at) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_lease_token ON jobs (lease_token) WHERE lease_token IS NOT NULL;
CREATE INDEX jobs_by_org ON jobs (organization_id, id DESC);
CREATE INDEX jobs_by_schedule ON jobs (organization_id, schedule_id, id DESC)
    WHERE schedule_id IS NOT NULL;

CREATE TABLE executions (
    id                 TEXT PRIMARY KEY,
    job_id             TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt            INTEGER NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'timed_out', 'released')),
    lease_token        TEXT,
    worker_id          TEXT,
    http_status        INTEGER,
    response_body      TEXT,
    response_truncated INTEGER NOT NULL DEFAULT 0,
    error              TEXT,
    started_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at        TEXT
) STRICT;
CREATE INDEX executions_by_job ON executions (job_id, id DESC);
-- Acks, fails and extends find their attempt by token; a token that is no
-- longer the job's current lease is still found here (409, not 404).
CREATE UNIQUE INDEX executions_by_lease_token ON executions (lease_token);

CREATE TABLE workers (
    organization_id   TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    worker_id         TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    handlers          TEXT NOT NULL,               -- JSON array
    max_in_flight     INTEGER NOT NULL,
    sdk               TEXT NOT NULL,
    connected_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_heartbeat_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    disconnected_at   TEXT,
    PRIMARY KEY (organization_id, worker_id)
) STRICT;
CREATE INDEX jobs_by_worker ON jobs (organization_id, worker_id) WHERE status = 'running';
