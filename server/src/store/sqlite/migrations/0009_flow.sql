-- Flow control: as postgres/migrations/0011_flow.sql, in SQLite's terms (a
-- column added to a table can only be a virtual generated one).
ALTER TABLE queues ADD COLUMN flow INTEGER NOT NULL GENERATED ALWAYS AS (
    CASE WHEN concurrency IS NULL AND rate_limit IS NULL AND key_concurrency IS NULL
              AND key_rate_limit IS NULL AND status = 'active' AND NOT blocked
              AND ordering = 'fifo' THEN 0
         WHEN ordering = 'lifo' THEN 2
         ELSE 1 END) VIRTUAL;

ALTER TABLE jobs ADD COLUMN flow INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;

DROP INDEX jobs_queued_pull;
CREATE INDEX jobs_queued_pull ON jobs (organization_id, handler, priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'pull' AND flow = 0;
DROP INDEX jobs_queued_push;
CREATE INDEX jobs_queued_push
    ON jobs (coalesce(target_host, ''), priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'push' AND flow = 0;

CREATE INDEX jobs_flow_fifo ON jobs (organization_id, queue, priority DESC, run_at, id)
    WHERE status = 'queued' AND flow = 1;
CREATE INDEX jobs_flow_lifo ON jobs (organization_id, queue, priority DESC, id DESC)
    WHERE status = 'queued' AND flow = 2;
CREATE INDEX jobs_flow_started ON jobs (organization_id, queue, status)
    WHERE flow <> 0 AND status IN ('scheduled', 'queued', 'running') AND attempt > attempt_base;
CREATE INDEX jobs_flow_pull ON jobs (organization_id, handler, queue)
    WHERE status = 'queued' AND delivery_type = 'pull' AND flow <> 0;
CREATE INDEX jobs_flow_push ON jobs (organization_id, queue)
    WHERE status = 'queued' AND delivery_type = 'push' AND flow <> 0;
