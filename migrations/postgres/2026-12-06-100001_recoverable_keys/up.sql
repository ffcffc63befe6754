-- Recoverable keys (issue 27, part 2), opt-in per workspace: when
-- recoverable_keys_at is set, a key may be created recoverable; its secret
-- is then kept encrypted (AES-256-GCM under an operator key named by
-- enc_key_id) in key_secrets, one row per key, destroyed on revoke and
-- delete. A key that is not recoverable has no row: only its digest is kept.
ALTER TABLE workspaces ADD COLUMN recoverable_keys_at TIMESTAMP;
ALTER TABLE api_keys ADD COLUMN recoverable BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE key_secrets (
    key_id        TEXT PRIMARY KEY NOT NULL REFERENCES api_keys (id),
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    enc_key_id    TEXT NOT NULL,   -- which operator key encrypted it
    nonce         TEXT NOT NULL,   -- base64, 96 bits, random per secret
    ciphertext    TEXT NOT NULL,   -- base64, with the GCM tag
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX key_secrets_workspace ON key_secrets (workspace_id);
