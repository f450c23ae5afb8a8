-- Plans: what an organization may use. NULL is no limit. `unlimited` is
-- every organization's until it is given another; the other four are seed
-- 004's tiers, shipped as examples an operator may change or delete.

CREATE TABLE plans (
    name                 text PRIMARY KEY,
    messages_per_day     bigint CHECK (messages_per_day >= 0),
    messages_per_month   bigint CHECK (messages_per_month >= 0),
    min_interval_seconds integer CHECK (min_interval_seconds > 0),
    max_retries          integer CHECK (max_retries >= 0),
    verify_domains       boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (name, messages_per_day, messages_per_month, min_interval_seconds,
                   max_retries, verify_domains)
VALUES ('unlimited', NULL, NULL, NULL, NULL, false),
       ('free', 500, 15000, 900, 1, true),
       ('starter', 3400, 102000, 60, 3, true),
       ('pro', 34000, 1020000, 60, 5, true),
       ('business', 340000, 10200000, 60, 10, true);

ALTER TABLE organizations
    ADD COLUMN plan text NOT NULL DEFAULT 'unlimited' REFERENCES plans (name);

-- Jobs created per organization and UTC day or calendar month, apart from
-- the jobs (retention deletes those). Only organizations on a limited plan
-- have rows.
CREATE TABLE usage_counts (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period          text NOT NULL CHECK (period IN ('day', 'month')),
    starts_on       date NOT NULL,
    used            bigint NOT NULL CHECK (used >= 0),
    PRIMARY KEY (organization_id, period, starts_on)
);
