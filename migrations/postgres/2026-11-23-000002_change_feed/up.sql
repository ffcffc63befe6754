-- The change feed: every write that changes what a key check answers
-- notifies the other instances in the same transaction (delivered on
-- commit), so no code path can forget to. `last_used_at` and other
-- bookkeeping columns are left out: they change nothing a check answers,
-- and the usage flush writes them constantly.
CREATE FUNCTION keyward_notify_key_change() RETURNS trigger AS $$
DECLARE
    payload TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        payload := 'k ' || NEW.workspace_id || ' ' || NEW.digest;
    ELSIF TG_OP = 'DELETE' THEN
        payload := 'k ' || OLD.workspace_id || ' ' || OLD.digest
            || COALESCE(' ' || OLD.previous_digest, '');
    ELSE
        payload := 'k ' || OLD.workspace_id || ' ' || OLD.digest
            || COALESCE(' ' || OLD.previous_digest, '')
            || ' ' || NEW.digest || COALESCE(' ' || NEW.previous_digest, '');
    END IF;
    PERFORM pg_notify('keyward_key_changes', payload);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF
        name, kind, owner_id, environment, permissions, resources, digest,
        previous_digest, previous_expires_at, expires_at, rate_limit,
        disabled_at, revoked_at, deleted_at
    ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_key_change();

CREATE FUNCTION keyward_notify_workspace_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('keyward_key_changes', 'w ' || NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER workspaces_changed
    AFTER UPDATE OF api_keys_disabled_at ON workspaces
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_workspace_change();
