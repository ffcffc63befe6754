-- A pasted masked key (sk_live_…5G08) is found by its last characters
-- through an index instead of a scan of the workspace's keys.
CREATE INDEX api_keys_tail ON api_keys (workspace_id, tail);
