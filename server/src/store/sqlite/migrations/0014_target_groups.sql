-- Target groups: as postgres/migrations/0015_target_groups.sql.
CREATE TABLE target_groups (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE target_group_members (
    id         TEXT PRIMARY KEY,
    group_id   TEXT NOT NULL REFERENCES target_groups (id) ON DELETE CASCADE,
    target_url TEXT NOT NULL,
    method     TEXT NOT NULL,
    headers    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX target_group_members_of_group ON target_group_members (group_id, id);

-- A queue's defaults, a job's fan-out and callback, fan-outs: as
-- postgres/migrations/0015_target_groups.sql.
ALTER TABLE queues ADD COLUMN default_target_group_id TEXT REFERENCES target_groups (id);
ALTER TABLE queues ADD COLUMN callback_queue_id TEXT REFERENCES queues (id) ON DELETE SET NULL;

ALTER TABLE jobs ADD COLUMN fan_out_id TEXT;
ALTER TABLE jobs ADD COLUMN callback_queue_id TEXT;
ALTER TABLE jobs ADD COLUMN outcome_published INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_of_fan_out ON jobs (fan_out_id, id) WHERE fan_out_id IS NOT NULL;
CREATE INDEX jobs_outcome_unpublished ON jobs (id)
    WHERE status IN ('completed', 'failed', 'cancelled') AND NOT outcome_published
      AND (fan_out_id IS NOT NULL OR callback_queue_id IS NOT NULL);

CREATE TABLE fan_outs (
    id                TEXT PRIMARY KEY,
    organization_id   TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    group_id          TEXT NOT NULL,
    queue             TEXT NOT NULL,
    total             INTEGER NOT NULL,
    succeeded         INTEGER NOT NULL DEFAULT 0,
    failed            INTEGER NOT NULL DEFAULT 0,
    callback_queue_id TEXT,
    created_at        TEXT NOT NULL,
    finished_at       TEXT,
    CHECK (succeeded + failed <= total)
);
CREATE INDEX fan_outs_finished ON fan_outs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE fan_out_ended (
    fan_out_id TEXT NOT NULL REFERENCES fan_outs (id) ON DELETE CASCADE,
    job_id     TEXT NOT NULL,
    PRIMARY KEY (fan_out_id, job_id)
);
