-- Fires a schedule could not make a job for (its organization's quota was
-- spent), with why: a schedule's history shows them instead of a gap. The
-- newest 100 of each schedule are kept.

CREATE TABLE skipped_runs (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    schedule_id     TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at         TEXT NOT NULL,
    error           TEXT NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;
CREATE INDEX skipped_runs_by_schedule ON skipped_runs (schedule_id, id DESC);
