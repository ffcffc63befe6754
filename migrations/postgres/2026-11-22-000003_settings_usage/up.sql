-- Workspace settings that govern keys, and hourly usage per key.

ALTER TABLE workspaces ADD COLUMN max_expiry_days INTEGER;                       -- NULL: no maximum
ALTER TABLE workspaces ADD COLUMN max_keys_per_user INTEGER NOT NULL DEFAULT 100;
ALTER TABLE workspaces ADD COLUMN default_rate_limit INTEGER;                    -- NULL: none

-- Verifications per key, hour and outcome ('VALID' or a rejection code).
-- The hot path counts in memory and adds to these rows in batches.
CREATE TABLE key_usage (
    key_id        TEXT NOT NULL REFERENCES api_keys (id),
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    hour          TIMESTAMP NOT NULL,
    outcome       TEXT NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (key_id, hour, outcome)
);
CREATE INDEX key_usage_workspace_hour ON key_usage (workspace_id, hour);

-- Event filters: by action and by actor, newest first.
CREATE INDEX events_workspace_action ON events (workspace_id, action, id DESC);
CREATE INDEX events_workspace_actor ON events (workspace_id, actor_label, id DESC);
