-- Domains an organization proves it owns (a file under /.well-known or a
-- DNS TXT record holding `token`). On a plan that requires it, push
-- targets on other domains take ten jobs a day each (domain_usage).

CREATE TABLE domains (
    id              uuid PRIMARY KEY,            -- UUIDv7
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain          text NOT NULL,               -- a normalized host name
    token           text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'verified', 'lapsed')),
    method          text CHECK (method IN ('well_known', 'dns_txt')),
    verified_at     timestamptz,
    checked_at      timestamptz,
    failing_since   timestamptz,                 -- first failed check since the last pass
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, domain)
);
-- The daily re-check takes verified and lapsed domains, oldest check first.
CREATE INDEX domains_to_recheck ON domains (checked_at) WHERE status <> 'pending';

-- Jobs sent per day to a domain the organization has not verified, by the
-- domain's registrable name.
CREATE TABLE domain_usage (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain          text NOT NULL,
    starts_on       date NOT NULL,
    used            bigint NOT NULL CHECK (used >= 0),
    PRIMARY KEY (organization_id, domain, starts_on)
);
