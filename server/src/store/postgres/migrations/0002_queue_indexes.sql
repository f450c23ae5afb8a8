-- Chronos schema, version 2: indexes that keep a busy queue cheap.
--
-- Every lease and every ack rewrites a job row (its status is in partial
-- index predicates, so the update cannot be HOT); each index the new row
-- belongs to costs an entry. These indexes hold only the rows that need
-- them.

-- Idempotency keys: only jobs that have one.
ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency_key;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (organization_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Lease tokens: only running attempts (every statement that looks a lease up
-- by token also asks for `running`; executions keep every token ever given).
DROP INDEX jobs_lease_token;
CREATE UNIQUE INDEX jobs_lease_token ON jobs (lease_token) WHERE status = 'running';

-- A worker's running jobs. Only rows with a worker: every query that uses it
-- names one, and a lookup by lease token (which names none) then cannot
-- take it for a cheaper way than the token — as a planner without
-- statistics yet did, scanning an organization's running jobs per ack.
DROP INDEX jobs_by_worker;
CREATE INDEX jobs_by_worker ON jobs (organization_id, worker_id)
    WHERE status = 'running' AND worker_id IS NOT NULL;

-- Closing an execution (status, finished_at, error) changes no indexed
-- column: room on the page lets it be a HOT update.
ALTER TABLE executions SET (fillfactor = 80);

-- A queue table turns over all the time: vacuum and analyze it after a few
-- percent of it changed, not the default fifth, so the dead entries that
-- leases leave at the head of the queued index are cleared soon.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
