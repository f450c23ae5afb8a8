-- Plans and usage counts. Same as postgres/migrations/0018_plans.sql.

CREATE TABLE plans (
    name                 TEXT PRIMARY KEY,
    messages_per_day     INTEGER CHECK (messages_per_day >= 0),
    messages_per_month   INTEGER CHECK (messages_per_month >= 0),
    min_interval_seconds INTEGER CHECK (min_interval_seconds > 0),
    max_retries          INTEGER CHECK (max_retries >= 0),
    verify_domains       INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

INSERT INTO plans (name, messages_per_day, messages_per_month, min_interval_seconds,
                   max_retries, verify_domains)
VALUES ('unlimited', NULL, NULL, NULL, NULL, 0),
       ('free', 500, 15000, 900, 1, 1),
       ('starter', 3400, 102000, 60, 3, 1),
       ('pro', 34000, 1020000, 60, 5, 1),
       ('business', 340000, 10200000, 60, 10, 1);

-- SQLite can't add a REFERENCES column with a default: the store checks
-- the plan exists when it assigns one, and keeps a plan in use.
ALTER TABLE organizations ADD COLUMN plan TEXT NOT NULL DEFAULT 'unlimited';

CREATE TABLE usage_counts (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period          TEXT NOT NULL CHECK (period IN ('day', 'month')),
    starts_on       TEXT NOT NULL,                       -- YYYY-MM-DD
    used            INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (organization_id, period, starts_on)
) STRICT;
