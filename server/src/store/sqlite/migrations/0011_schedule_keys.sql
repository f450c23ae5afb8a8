-- A schedule's concurrency key: as postgres/migrations/0013_schedule_keys.sql.
ALTER TABLE schedules ADD COLUMN concurrency_key TEXT;
