-- Signing secrets, the HMAC keys push requests are signed with. The value
-- is kept as given (it must be, to sign); the previous value keeps signing
-- until `previous_expires_at` after a rotation.
CREATE TABLE signing_secrets (
    id                  TEXT PRIMARY KEY,         -- UUIDv7
    organization_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    secret              TEXT NOT NULL,
    previous_secret     TEXT,
    previous_expires_at TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rotated_at          TEXT
) STRICT;
CREATE INDEX signing_secrets_by_org ON signing_secrets (organization_id, id DESC);
