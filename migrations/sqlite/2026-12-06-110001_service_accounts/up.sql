-- Service accounts (issue 26, part 2): a workspace member that is not a
-- person. It is a `users` row like any member (role, status, the owner of
-- its keys, the actor its management keys act for), with `kind` 'service',
-- and a `people` row that has no password and an address nobody can sign
-- in with, so every join from a member to its person keeps working.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'service'));
ALTER TABLE users ADD COLUMN description TEXT NOT NULL DEFAULT '';
-- A disabled service account: all its keys stop at once, and start again
-- when it is enabled.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;
CREATE INDEX users_kind ON users (workspace_id, kind);

-- A service account's keys are personal keys of its membership (the kind
-- CHECK stays 'personal' | 'workspace'); its membership id starts `sa_`
-- (people's start `usr_`), so the policy and the lists tell its keys from
-- people's by `owner_id` alone (api_keys is at the 32 columns Diesel's
-- default build supports: one column is all this migration adds there).
-- Set while the owning service account is disabled: key checks refuse the
-- key like a disabled one, without touching the key's own switch (so
-- enabling the account restores exactly what was on before).
ALTER TABLE api_keys ADD COLUMN owner_disabled_at TIMESTAMP;

-- The version trigger (2026-12-04-000001) counts the columns a key check
-- reads: owner_disabled_at is one now.
DROP TRIGGER IF EXISTS api_keys_version;
CREATE TRIGGER api_keys_version
    AFTER UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at, owner_disabled_at
    ON api_keys
    FOR EACH ROW
BEGIN
    UPDATE api_keys SET version = OLD.version + 1 WHERE id = NEW.id;
END;
