-- Chronos schema, version 13: a schedule's concurrency key.
--
-- Each fire's job carries its schedule's key (jobs.concurrency_key) for its
-- queue's per-key limits. Kept in a column beside the template, as a job
-- keeps its own; null for a schedule without one, as every existing one is.
ALTER TABLE schedules ADD COLUMN concurrency_key text;
