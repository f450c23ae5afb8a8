-- Domains an organization proves it owns (a file under /.well-known or a
-- DNS TXT record holding `token`). On a plan that requires it, push
-- targets on other domains take ten jobs a day each (domain_usage).

CREATE TABLE domains (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain          TEXT NOT NULL,
    token           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'verified', 'lapsed')),
    method          TEXT CHECK (method IN ('well_known', 'dns_txt')),
    verified_at     TEXT,
    checked_at      TEXT,
    failing_since   TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (organization_id, domain)
) STRICT;
CREATE INDEX domains_to_recheck ON domains (checked_at) WHERE status <> 'pending';

CREATE TABLE domain_usage (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain          TEXT NOT NULL,
    starts_on       TEXT NOT NULL,                       -- YYYY-MM-DD
    used            INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (organization_id, domain, starts_on)
) STRICT;
