DROP INDEX api_keys_search_trgm;
