-- As postgres/migrations/0014_polled_handlers.sql.
CREATE TABLE polled_handlers (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    handler         TEXT NOT NULL,
    polled_at       TEXT NOT NULL,
    PRIMARY KEY (organization_id, handler)
) STRICT;
