-- Chronos schema, version 11: flow control (seed 004's queue limits).
--
-- A queue's `flow` says how the lease path treats its jobs: 0 when nothing
-- can hold them back (no limit, fifo, active, not blocked): the fast path,
-- which costs what it did before queues; 1 (fifo) or 2 (lifo) otherwise:
-- the controlled path, which locks the queue's row and counts its running
-- jobs before it leases. Every unfinished job carries its queue's flow,
-- written when it is inserted (under a share lock of the queue's row) and
-- rewritten by whatever changes the queue (under an update lock of it), so
-- the fast path needs no join.
ALTER TABLE queues ADD COLUMN flow smallint NOT NULL GENERATED ALWAYS AS (
    CASE WHEN concurrency IS NULL AND rate_limit IS NULL AND key_concurrency IS NULL
              AND key_rate_limit IS NULL AND status = 'active' AND NOT blocked
              AND ordering = 'fifo' THEN 0
         WHEN ordering = 'lifo' THEN 2
         ELSE 1 END) STORED;

ALTER TABLE jobs ADD COLUMN flow smallint NOT NULL DEFAULT 0;
-- Per-key limits apply to jobs that share a key (a customer id, say).
ALTER TABLE jobs ADD COLUMN concurrency_key text;

-- The fast path's indexes hold only jobs of free queues.
DROP INDEX jobs_queued_pull;
CREATE INDEX jobs_queued_pull ON jobs (organization_id, handler, priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'pull' AND flow = 0;
DROP INDEX jobs_queued_push;
CREATE INDEX jobs_queued_push
    ON jobs ((coalesce(target_host, '') COLLATE "C"), priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'push' AND flow = 0;

-- The controlled path: a queue's due jobs in its order, and the jobs that
-- hold its slots. A job holds a slot while it runs, and, in a queue that
-- runs one job at a time, until it has finished for good (a retry waiting
-- for its time still holds it): those are the jobs with an attempt since
-- their last manual retry.
CREATE INDEX jobs_flow_fifo ON jobs (organization_id, queue, priority DESC, run_at, id)
    WHERE status = 'queued' AND flow = 1;
CREATE INDEX jobs_flow_lifo ON jobs (organization_id, queue, priority DESC, id DESC)
    WHERE status = 'queued' AND flow = 2;
CREATE INDEX jobs_flow_started ON jobs (organization_id, queue, status)
    WHERE flow <> 0 AND status IN ('scheduled', 'queued', 'running') AND attempt > attempt_base;
-- Which handlers' workers the controlled path serves: found from the lease
-- of a pull worker, by its handlers.
CREATE INDEX jobs_flow_pull ON jobs (organization_id, handler, queue)
    WHERE status = 'queued' AND delivery_type = 'pull' AND flow <> 0;
-- And for push delivery, which leases for every organization: the queues
-- with push jobs waiting.
CREATE INDEX jobs_flow_push ON jobs (organization_id, queue)
    WHERE status = 'queued' AND delivery_type = 'push' AND flow <> 0;
CREATE INDEX queues_controlled ON queues (id) WHERE flow <> 0;

-- A job may only be inserted into a queue that exists: the insert calls this
-- for a name it found no queue for, which ends the statement (and with it
-- the whole batch) with SQLSTATE CQ404 and the name as the detail.
CREATE FUNCTION chronos_queue_not_found(queue text) RETURNS smallint
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'queue not found: %', queue USING ERRCODE = 'CQ404', DETAIL = queue;
END
$$;
