-- Rate limits and per-key limits: as postgres/migrations/0012_rates.sql.
CREATE TABLE queue_starts (
    queue_id        TEXT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    concurrency_key TEXT,
    started_at      TEXT NOT NULL
);
CREATE INDEX queue_starts_window ON queue_starts (queue_id, started_at);
CREATE INDEX queue_starts_key ON queue_starts (queue_id, concurrency_key, started_at)
    WHERE concurrency_key IS NOT NULL;

CREATE INDEX jobs_flow_keys ON jobs (organization_id, queue, concurrency_key, priority DESC, run_at, id)
    WHERE status = 'queued' AND flow <> 0;
