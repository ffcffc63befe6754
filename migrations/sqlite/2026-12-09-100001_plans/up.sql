-- Plans (issue 23, section 3): see the PostgreSQL migration.
CREATE TABLE plans (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
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

ALTER TABLE api_keys ADD COLUMN plan_id TEXT REFERENCES plans (id);
ALTER TABLE api_keys ADD COLUMN plan_overrides TEXT NOT NULL DEFAULT '';
CREATE INDEX api_keys_plan ON api_keys (plan_id) WHERE plan_id IS NOT NULL;
