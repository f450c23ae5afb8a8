-- Target groups (seed 004): named sets of push endpoints, one delivery per
-- member for a publish that names the group.
CREATE TABLE target_groups (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE target_group_members (
    id         uuid PRIMARY KEY,
    group_id   uuid NOT NULL REFERENCES target_groups (id) ON DELETE CASCADE,
    target_url text NOT NULL,
    method     text NOT NULL,
    headers    jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX target_group_members_of_group ON target_group_members (group_id, id);
