DROP TABLE key_leaks;
ALTER TABLE workspaces DROP COLUMN leak_response;
ALTER TABLE api_keys DROP COLUMN revoked_reason;
ALTER TABLE api_keys DROP COLUMN key_prefix;
