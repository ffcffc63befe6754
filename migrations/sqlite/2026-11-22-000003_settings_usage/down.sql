DROP INDEX events_workspace_actor;
DROP INDEX events_workspace_action;
DROP TABLE key_usage;
ALTER TABLE workspaces DROP COLUMN default_rate_limit;
ALTER TABLE workspaces DROP COLUMN max_keys_per_user;
ALTER TABLE workspaces DROP COLUMN max_expiry_days;
