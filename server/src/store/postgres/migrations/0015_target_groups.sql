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

-- A queue's defaults for what is published onto it: a group to fan out
-- across when a message names no target, and a queue to publish each
-- delivery's outcome to. A group a queue names can't be deleted.
ALTER TABLE queues
    ADD COLUMN default_target_group_id uuid REFERENCES target_groups (id),
    ADD COLUMN callback_queue_id uuid REFERENCES queues (id) ON DELETE SET NULL;

-- A delivery's place in a fan-out, where its outcome is published, and
-- whether it has been. The end of the delivery (its status, in the
-- transaction that ends it) is the record; the outcome publisher takes the
-- ended ones not yet published from the partial index, and marks them in
-- the transaction that publishes their callbacks and counts their fan-out.
ALTER TABLE jobs
    ADD COLUMN fan_out_id uuid,
    ADD COLUMN callback_queue_id uuid,
    ADD COLUMN outcome_published boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_of_fan_out ON jobs (fan_out_id, id) WHERE fan_out_id IS NOT NULL;
CREATE INDEX jobs_outcome_unpublished ON jobs (id)
    WHERE status IN ('completed', 'failed', 'cancelled') AND NOT outcome_published
      AND (fan_out_id IS NOT NULL OR callback_queue_id IS NOT NULL);

-- One publish across a group: how many of its deliveries ended, and how.
-- The group is not referenced: it may be deleted while they run.
CREATE TABLE fan_outs (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    group_id          uuid NOT NULL,
    queue             text NOT NULL,
    total             integer NOT NULL,
    succeeded         integer NOT NULL DEFAULT 0,
    failed            integer NOT NULL DEFAULT 0,
    CHECK (succeeded + failed <= total),
    callback_queue_id uuid,
    created_at        timestamptz NOT NULL,
    finished_at       timestamptz
);
CREATE INDEX fan_outs_finished ON fan_outs (finished_at) WHERE finished_at IS NOT NULL;

-- The members of a fan-out already counted down: a member retried by hand
-- after it ended is not counted twice.
CREATE TABLE fan_out_ended (
    fan_out_id uuid NOT NULL REFERENCES fan_outs (id) ON DELETE CASCADE,
    job_id     uuid NOT NULL,
    PRIMARY KEY (fan_out_id, job_id)
);
