-- The per-key version of the PostgreSQL migration of the same name: bumped
-- by every write that changes what a key check answers. SQLite serves one
-- instance and applies its own changes in-process before answering, so
-- nothing compares versions here yet; the column keeps both schemas alike
-- and means the same thing on both.
ALTER TABLE api_keys ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER api_keys_version
    AFTER UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at
    ON api_keys
    FOR EACH ROW
BEGIN
    UPDATE api_keys SET version = OLD.version + 1 WHERE id = NEW.id;
END;
