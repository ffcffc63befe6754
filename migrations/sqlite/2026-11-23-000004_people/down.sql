DROP INDEX sessions_person;
ALTER TABLE sessions DROP COLUMN person_id;
DROP INDEX users_person;
DROP INDEX users_active_person;
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN password_hash TEXT;
UPDATE users SET
    email = (SELECT p.email FROM people p WHERE p.id = users.person_id),
    name = COALESCE(invited_name, (SELECT p.name FROM people p WHERE p.id = users.person_id)),
    password_hash = CASE WHEN accepted_at IS NOT NULL
        THEN (SELECT p.password_hash FROM people p WHERE p.id = users.person_id) END;
ALTER TABLE users DROP COLUMN invited_name;
ALTER TABLE users DROP COLUMN accepted_at;
ALTER TABLE users DROP COLUMN person_id;
CREATE UNIQUE INDEX users_active_email ON users (email) WHERE status = 'active';
CREATE INDEX users_workspace ON users (workspace_id, email);
DROP TABLE people;
