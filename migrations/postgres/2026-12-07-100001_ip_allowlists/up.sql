-- IP allowlists (issue 23, section 2): the addresses and CIDR ranges a key
-- may be used from, normalised and comma-separated (at most 100 entries);
-- NULL for none, the key then usable from anywhere.
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;

-- A key check reads it: an allowlist change bumps the key's version and
-- notifies every instance, so cached copies go (2026-12-06-110001).
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
