-- Plans (issue 23, section 3): named settings that keys follow. A plan's
-- rate limit, quota and IP allowlist are copied into the keys on it that do
-- not override them, in the same transaction as the plan's edit; its
-- permissions (NULL: any) are the most its keys may hold.
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The name as compared: lower case, so "Gold" and "gold" cannot both exist.
    name_key TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    rate_limit INTEGER,
    quota_limit BIGINT,
    quota_refill BIGINT,
    quota_period TEXT,
    allowed_ips TEXT,
    permissions TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (workspace_id, name_key)
);

-- The plan a key is on, and which of its settings are the key's own
-- (comma-separated: rate_limit, quota, allowed_ips).
ALTER TABLE api_keys ADD COLUMN plan_id TEXT REFERENCES plans (id);
ALTER TABLE api_keys ADD COLUMN plan_overrides TEXT NOT NULL DEFAULT '';
CREATE INDEX api_keys_plan ON api_keys (plan_id) WHERE plan_id IS NOT NULL;

-- A plan's edit rewrites every key on it in one transaction, and tells the
-- other instances once (a workspace notice), not once per key: the
-- transaction sets `keyward.quiet_keys` while it rewrites them.
CREATE OR REPLACE FUNCTION keyward_notify_key_change() RETURNS trigger AS $$
DECLARE
    payload TEXT;
BEGIN
    IF current_setting('keyward.quiet_keys', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        payload := 'k ' || NEW.workspace_id || ' ' || NEW.digest
            || ' #' || NEW.version;
    ELSIF TG_OP = 'DELETE' THEN
        payload := 'k ' || OLD.workspace_id || ' ' || OLD.digest
            || COALESCE(' ' || OLD.previous_digest, '');
    ELSE
        payload := 'k ' || OLD.workspace_id || ' ' || OLD.digest
            || COALESCE(' ' || OLD.previous_digest, '')
            || ' ' || NEW.digest || COALESCE(' ' || NEW.previous_digest, '')
            || ' #' || NEW.version;
    END IF;
    payload := payload || ' @' || floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    PERFORM pg_notify('keyward_key_changes', payload);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
