-- A per-key version, bumped (in the same statement, by the database) by
-- every write that changes what a key check answers, and carried in the
-- change notice. An instance that has already read version n of a key
-- keeps its cached and stale copies when the notice for version n (or an
-- older one) arrives late: its own notice for a key created a moment ago
-- used to drop the outage copy of a key checked right after creation.
-- The column list is the change feed's (2026-11-23-000002), so a version
-- counts exactly the changes that are notified.
ALTER TABLE api_keys ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION keyward_bump_key_version() RETURNS trigger AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_version
    BEFORE UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at
    ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_bump_key_version();

-- Notices of inserts and updates carry the row's new version ("#n"); a
-- deleted row has none, and its notice drops whatever is cached.
-- Instances that do not know "#n" take it for a digest no key has.
CREATE OR REPLACE FUNCTION keyward_notify_key_change() RETURNS trigger AS $$
DECLARE
    payload TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        payload := 'k ' || NEW.workspace_id || ' ' || NEW.digest
            || ' #' || NEW.version;
    ELSIF TG_OP = 'DELETE' THEN
        payload := 'k ' || OLD.workspace_id || ' ' || OLD.digest
            || COALESCE(' ' || OLD.previous_digest, '');
    ELSE
        payload := 'k ' || OLD.workspace_id || ' ' || OLD.digest
            || COALESCE(' ' || OLD.previous_digest, '')
            || ' ' || NEW.digest || COALESCE(' ' || NEW.previous_digest, '')
            || ' #' || NEW.version;
    END IF;
    payload := payload || ' @' || floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    PERFORM pg_notify('keyward_key_changes', payload);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
