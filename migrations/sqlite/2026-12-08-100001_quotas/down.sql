DROP TRIGGER IF EXISTS api_keys_version;
CREATE TRIGGER api_keys_version
    AFTER UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at, owner_disabled_at, allowed_ips
    ON api_keys
    FOR EACH ROW
BEGIN
    UPDATE api_keys SET version = OLD.version + 1 WHERE id = NEW.id;
END;
DROP TABLE key_quotas;
ALTER TABLE api_keys DROP COLUMN quota_period;
ALTER TABLE api_keys DROP COLUMN quota_refill;
ALTER TABLE api_keys DROP COLUMN quota_limit;
