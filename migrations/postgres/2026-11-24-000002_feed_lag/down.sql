-- The payloads without the write time.
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
    PERFORM pg_notify('keyward_key_changes', payload);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION keyward_notify_workspace_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('keyward_key_changes', 'w ' || NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
