-- Version 6: the indexes postgres/migrations/0007_lease_indexes.sql drops,
-- for the same reason: each one took an entry on every lease. A running job
-- is found by its lease token through its execution; a worker's running
-- jobs through `jobs_running_deadline`.
DROP INDEX jobs_lease_token;
DROP INDEX jobs_by_worker;
