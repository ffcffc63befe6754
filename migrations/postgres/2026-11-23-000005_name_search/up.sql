-- Search by part of a name, owner or tag (a substring of `search`) through
-- a trigram index instead of a scan of the workspace's keys. pg_trgm ships
-- with PostgreSQL and is a trusted extension: the database's owner may
-- create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX api_keys_search_trgm ON api_keys USING gin (search gin_trgm_ops);

-- Lists count their keys (up to a cap) from this index: every scope is a
-- prefix of it (workspace keys have no owner).
CREATE INDEX api_keys_live_owner ON api_keys (workspace_id, owner_id) WHERE deleted_at IS NULL;
