DROP TABLE key_secrets;
ALTER TABLE api_keys DROP COLUMN recoverable;
ALTER TABLE workspaces DROP COLUMN recoverable_keys_at;
