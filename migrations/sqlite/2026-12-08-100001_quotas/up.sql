-- Usage quotas (issue 23, section 1): see the PostgreSQL migration.
ALTER TABLE api_keys ADD COLUMN quota_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN quota_refill BIGINT;
ALTER TABLE api_keys ADD COLUMN quota_period TEXT;

CREATE TABLE key_quotas (
    key_id TEXT PRIMARY KEY NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    remaining BIGINT NOT NULL,
    window_start TIMESTAMP
);

-- A quota change (and a top-up, which writes quota_limit unchanged) bumps
-- the key's version.
DROP TRIGGER IF EXISTS api_keys_version;
CREATE TRIGGER api_keys_version
    AFTER UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at, owner_disabled_at, allowed_ips,
        quota_limit, quota_refill, quota_period
    ON api_keys
    FOR EACH ROW
BEGIN
    UPDATE api_keys SET version = OLD.version + 1 WHERE id = NEW.id;
END;
