-- Chronos schema, version 7: two fewer index entries on every lease.
--
-- A lease rewrites the job row (not HOT: its status is in partial index
-- predicates), so every index the running row belongs to takes an entry.
--
-- Lease tokens: a running job is found through its execution, whose unique
-- index on `lease_token` holds every token ever given; the statements still
-- compare `jobs.lease_token`, which is what fences a stale worker.
DROP INDEX jobs_lease_token;

-- A worker's running jobs: read on reconnect and for the workers list, both
-- from the running jobs' own index (`jobs_running_deadline`), which holds
-- only the jobs in flight.
DROP INDEX jobs_by_worker;
