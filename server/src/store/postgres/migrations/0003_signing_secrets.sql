-- Chronos schema, version 3: signing secrets, the HMAC keys push requests
-- are signed with. The value is kept as given (it must be, to sign); the
-- previous value keeps signing until `previous_expires_at` after a rotation.
CREATE TABLE signing_secrets (
    id                  uuid PRIMARY KEY,         -- UUIDv7
    organization_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                text NOT NULL,
    secret              text NOT NULL,
    previous_secret     text,
    previous_expires_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    rotated_at          timestamptz
);
CREATE INDEX signing_secrets_by_org ON signing_secrets (organization_id, id DESC);
