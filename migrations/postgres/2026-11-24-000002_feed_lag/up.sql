-- Change notifications carry when they were written ("@" and microseconds
-- since the epoch, PostgreSQL's clock), so instances can report how long a
-- change took to reach them (keyward_change_feed_lag_seconds). Instances
-- that do not know the field drop it like an unknown digest.
CREATE OR REPLACE FUNCTION keyward_notify_key_change() RETURNS trigger AS $$
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
    payload := payload || ' @' || floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    PERFORM pg_notify('keyward_key_changes', payload);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION keyward_notify_workspace_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('keyward_key_changes', 'w ' || NEW.id
        || ' @' || floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
