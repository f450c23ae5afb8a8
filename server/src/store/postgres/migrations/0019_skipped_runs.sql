-- Fires a schedule could not make a job for (its organization's quota was
-- spent), with why: a schedule's history shows them instead of a gap. The
-- newest 100 of each schedule are kept.

CREATE TABLE skipped_runs (
    id              uuid PRIMARY KEY,            -- UUIDv7
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    schedule_id     uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at         timestamptz NOT NULL,
    error           jsonb NOT NULL,              -- {"code", "message", "window", "limit", ...}
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX skipped_runs_by_schedule ON skipped_runs (schedule_id, id DESC);
