-- Chronos schema, version 12: rate limits and per-key limits of queues.
--
-- Each start of a job of a queue with a rate limit (its own, or per key) is
-- logged here by the lease that starts it, under the lock of the queue's
-- row, so a lease counts the starts of the window behind it exactly: no
-- more than the limit in any window of the period (a sliding log, not a
-- fixed window that allows a double burst at its edge). Rows older than
-- the longest period are deleted by the next lease of the queue.
CREATE TABLE queue_starts (
    queue_id        uuid NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    concurrency_key text,
    started_at      timestamptz NOT NULL
);
CREATE INDEX queue_starts_window ON queue_starts (queue_id, started_at);
CREATE INDEX queue_starts_key ON queue_starts (queue_id, concurrency_key, started_at)
    WHERE concurrency_key IS NOT NULL;

-- A queue with per-key limits serves its keys in turn: the keys with due
-- jobs are found by skipping through this index (one probe per key), and
-- each key's next jobs read from it in the queue's order; jobs without a
-- key are found under the null key.
CREATE INDEX jobs_flow_keys ON jobs (organization_id, queue, concurrency_key, priority DESC, run_at, id)
    WHERE status = 'queued' AND flow <> 0;
-- And each key's room: its jobs that hold its slots, one probe per key.
CREATE INDEX jobs_flow_key_started ON jobs (organization_id, queue, concurrency_key)
    WHERE flow <> 0 AND status IN ('scheduled', 'queued', 'running') AND attempt > attempt_base
      AND concurrency_key IS NOT NULL;
