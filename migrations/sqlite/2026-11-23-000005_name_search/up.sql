-- Search by part of a name, owner or tag (a substring of `search`) through
-- an FTS5 trigram index instead of a scan of the workspace's keys.
--
-- The index reads the text from api_keys itself (external content) and
-- names rows by `seq`, a number of their own: rowids of a table without an
-- INTEGER PRIMARY KEY may change in a VACUUM, `seq` does not. keyward's
-- code never reads `seq`; the triggers keep it and the index current.
ALTER TABLE api_keys ADD COLUMN seq INTEGER;
UPDATE api_keys SET seq = rowid;
CREATE UNIQUE INDEX api_keys_seq ON api_keys (seq);

CREATE VIRTUAL TABLE api_keys_fts USING fts5(
    search,
    content = 'api_keys',
    content_rowid = 'seq',
    tokenize = 'trigram'
);
INSERT INTO api_keys_fts (api_keys_fts) VALUES ('rebuild');

CREATE TRIGGER api_keys_fts_insert AFTER INSERT ON api_keys
BEGIN
    UPDATE api_keys SET seq = (SELECT coalesce(max(seq), 0) + 1 FROM api_keys)
        WHERE rowid = new.rowid;
    INSERT INTO api_keys_fts (rowid, search)
        SELECT seq, search FROM api_keys WHERE rowid = new.rowid;
END;

CREATE TRIGGER api_keys_fts_update AFTER UPDATE OF search ON api_keys
BEGIN
    INSERT INTO api_keys_fts (api_keys_fts, rowid, search) VALUES ('delete', old.seq, old.search);
    INSERT INTO api_keys_fts (rowid, search) VALUES (new.seq, new.search);
END;

CREATE TRIGGER api_keys_fts_delete AFTER DELETE ON api_keys
BEGIN
    INSERT INTO api_keys_fts (api_keys_fts, rowid, search) VALUES ('delete', old.seq, old.search);
END;

-- Lists count their keys (up to a cap) from this index alone: every scope
-- is a prefix of it (workspace keys have no owner).
CREATE INDEX api_keys_live_owner ON api_keys (workspace_id, owner_id) WHERE deleted_at IS NULL;
