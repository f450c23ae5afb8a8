-- Chronos schema, version 8: one index entry fewer for each attempt.
--
-- Every read of executions names the job: the list (`job_id = $2`), the
-- cancel, and the ack, which knows both ids. So the primary key is
-- (job_id, id), and the separate index on (job_id, id DESC) goes: an
-- execution's insert writes two index entries (this and `lease_token`), not
-- three. Execution ids stay unique: each is a UUIDv7 made once.
ALTER TABLE executions DROP CONSTRAINT executions_pkey;
ALTER TABLE executions ADD PRIMARY KEY (job_id, id);
DROP INDEX executions_by_job;
