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
