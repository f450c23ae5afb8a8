-- Queues: the same table as postgres/migrations/0010_queues.sql, in SQLite's
-- types. Every organization has `default`; a queue is also made for every
-- name its jobs and schedules already use, with no limit.
CREATE TABLE queues (
    id                      TEXT PRIMARY KEY,         -- UUIDv7
    organization_id         TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    concurrency             INTEGER CHECK (concurrency BETWEEN 1 AND 100),  -- NULL: no limit
    retries                 INTEGER NOT NULL CHECK (retries >= 0),
    ordering                TEXT NOT NULL CHECK (ordering IN ('fifo', 'lifo')),
    failure_mode            TEXT NOT NULL CHECK (failure_mode IN ('continue', 'block', 'pause')),
    status                  TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    blocked                 INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    rate_limit              INTEGER CHECK (rate_limit > 0),
    rate_period_seconds     INTEGER CHECK (rate_period_seconds > 0),
    key_concurrency         INTEGER CHECK (key_concurrency > 0),
    key_rate_limit          INTEGER CHECK (key_rate_limit > 0),
    key_rate_period_seconds INTEGER CHECK (key_rate_period_seconds > 0),
    signing_secret_id       TEXT REFERENCES signing_secrets (id),
    default_target_url      TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    UNIQUE (organization_id, name),
    CHECK ((rate_limit IS NULL) = (rate_period_seconds IS NULL)),
    CHECK ((key_rate_limit IS NULL) = (key_rate_period_seconds IS NULL))
) STRICT;

-- UUIDv7 of now for the rows made here: the time in milliseconds over the
-- first 48 bits, then version 7, the variant and random bits.
INSERT INTO queues (id, organization_id, name, retries, ordering, failure_mode, status,
                    created_at, updated_at)
SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(lower(hex(randomblob(2))), 2)
           || '-' || substr('89ab', 1 + (random() & 3), 1)
           || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
       organization_id, name, 3, 'fifo', 'continue', 'active',
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM (SELECT printf('%012x', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS t),
     (SELECT id AS organization_id, 'default' AS name FROM organizations
      UNION
      SELECT organization_id, queue FROM jobs
      UNION
      SELECT organization_id, json_extract(template, '$.queue') FROM schedules
      WHERE json_extract(template, '$.queue') IS NOT NULL)
ORDER BY organization_id, name;
