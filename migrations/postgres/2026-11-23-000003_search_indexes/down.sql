DROP INDEX api_keys_tail;
