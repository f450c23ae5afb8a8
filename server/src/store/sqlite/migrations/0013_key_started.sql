-- A key's started jobs, as postgres/migrations/0012_rates.sql has them
-- (`jobs_flow_key_started`), with the status too: a keyed lease reads each
-- key's load and its retrying head from here alone, not from every queued
-- job of the key.
CREATE INDEX jobs_flow_key_started ON jobs (organization_id, queue, concurrency_key, status)
    WHERE flow <> 0 AND status IN ('scheduled', 'queued', 'running') AND attempt > attempt_base
      AND concurrency_key IS NOT NULL;
