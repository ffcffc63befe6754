ALTER TABLE api_keys RESET (fillfactor);
ALTER TABLE key_usage RESET (fillfactor);
