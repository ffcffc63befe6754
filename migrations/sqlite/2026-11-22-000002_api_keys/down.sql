DROP TABLE api_keys;
DROP TABLE permissions;
ALTER TABLE workspaces DROP COLUMN api_keys_disabled_at;
