DROP INDEX api_keys_live_owner;
DROP INDEX api_keys_search_trgm;
