-- People, their memberships and sessions, invites; API keys gain an expiry,
-- a last use and a list of queues. The first-start admin key becomes the
-- instance administrator's.

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    email               text NOT NULL,               -- as the person wrote it
    email_key           text NOT NULL UNIQUE,        -- lowercased: what identifies them
    name                text,
    password_hash       text NOT NULL,               -- argon2id, PHC string
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE sessions (
    token_sha256 bytea PRIMARY KEY,                  -- SHA-256 of the cookie's 32 random bytes
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL                -- the absolute end
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE invites (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email           text NOT NULL,
    email_key       text NOT NULL,
    role            text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    token_sha256    bytea NOT NULL UNIQUE,
    invited_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX invites_by_org ON invites (organization_id, created_at);

ALTER TABLE api_keys
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN queues       text[];

UPDATE api_keys SET scopes = scopes || ARRAY['instance:admin']
 WHERE name = 'admin (created on first start)'
   AND NOT ('instance:admin' = ANY (scopes))
   AND organization_id = (SELECT id FROM organizations WHERE slug = 'default');
