-- The payloads without versions (as 2026-11-24-000002 wrote them).
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

DROP TRIGGER api_keys_version ON api_keys;
DROP FUNCTION keyward_bump_key_version();
ALTER TABLE api_keys DROP COLUMN version;
