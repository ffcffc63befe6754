-- Usage quotas (issue 23, section 1). A key's quota: `quota_limit` uses at
-- most, refilled by `quota_refill` at the start of each `quota_period`
-- (day, week or month, from 00:00 UTC); a quota per period is a refill of
-- the whole limit. No refill: credits that run out for good until topped
-- up. NULL limit: no quota.
ALTER TABLE api_keys ADD COLUMN quota_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN quota_refill BIGINT;
ALTER TABLE api_keys ADD COLUMN quota_period TEXT;

-- What is left of a key's quota in the database: instances reserve uses
-- from `remaining` and spend them locally (docs/quotas.md), so the sum of
-- what every instance spends never exceeds it. `window_start`: the start
-- of the refill period `remaining` belongs to (NULL without a refill).
CREATE TABLE key_quotas (
    key_id TEXT PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    remaining BIGINT NOT NULL,
    window_start TIMESTAMP
);

-- A check reads the quota: a change (and a top-up, which writes
-- quota_limit unchanged) bumps the key's version and notifies every
-- instance, which then drops its cached copy and its reserve.
DROP TRIGGER api_keys_changed ON api_keys;
CREATE TRIGGER api_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at, owner_disabled_at, allowed_ips,
        quota_limit, quota_refill, quota_period
    ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_key_change();
DROP TRIGGER api_keys_version ON api_keys;
CREATE TRIGGER api_keys_version
    BEFORE UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at, owner_disabled_at, allowed_ips,
        quota_limit, quota_refill, quota_period
    ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_bump_key_version();
