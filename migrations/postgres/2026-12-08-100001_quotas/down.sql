DROP TRIGGER api_keys_changed ON api_keys;
CREATE TRIGGER api_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at, owner_disabled_at, allowed_ips
    ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_key_change();
DROP TRIGGER api_keys_version ON api_keys;
CREATE TRIGGER api_keys_version
    BEFORE UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at, owner_disabled_at, allowed_ips
    ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_bump_key_version();
DROP TABLE key_quotas;
ALTER TABLE api_keys DROP COLUMN quota_period;
ALTER TABLE api_keys DROP COLUMN quota_refill;
ALTER TABLE api_keys DROP COLUMN quota_limit;
