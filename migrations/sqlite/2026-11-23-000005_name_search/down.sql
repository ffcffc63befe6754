DROP INDEX api_keys_live_owner;
DROP TRIGGER api_keys_fts_delete;
DROP TRIGGER api_keys_fts_update;
DROP TRIGGER api_keys_fts_insert;
DROP TABLE api_keys_fts;
DROP INDEX api_keys_seq;
ALTER TABLE api_keys DROP COLUMN seq;
