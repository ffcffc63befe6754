DROP TRIGGER api_keys_version;
ALTER TABLE api_keys DROP COLUMN version;
