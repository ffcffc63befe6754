-- People and memberships. A person (email, name, password, sessions) can
-- belong to several workspaces; a `users` row is now a membership: person x
-- workspace x role x status. Ids of `users` rows are unchanged, so keys'
-- owners and creators, sessions and events keep pointing at the membership
-- they were made in.

CREATE TABLE people (
    id                 TEXT PRIMARY KEY,
    email              TEXT NOT NULL,
    name               TEXT NOT NULL,
    password_hash      TEXT,
    -- Where sign-in takes them: the workspace they last switched to.
    last_workspace_id  TEXT REFERENCES workspaces (id),
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX people_email ON people (email);

-- One person per email address. Name and password come from the address's
-- active account (there was at most one), else from its latest row.
INSERT INTO people (id, email, name, password_hash, last_workspace_id, created_at, updated_at)
SELECT 'per_' || substr(u.id, 5), u.email, u.name, u.password_hash, u.workspace_id,
       u.created_at, u.updated_at
FROM users u
WHERE u.id = (
    SELECT u2.id FROM users u2 WHERE u2.email = u.email
    ORDER BY (u2.status = 'active') DESC, u2.updated_at DESC, u2.id
    LIMIT 1
);

ALTER TABLE users ADD COLUMN person_id TEXT REFERENCES people (id);
-- When the person joined the workspace; NULL while the invitation is
-- pending (a new person who has not chosen a password yet, or an existing
-- person who has not accepted).
ALTER TABLE users ADD COLUMN accepted_at TIMESTAMP;
-- The name the admin typed when inviting, shown until the person accepts
-- (their own name is theirs to reveal).
ALTER TABLE users ADD COLUMN invited_name TEXT;

UPDATE users SET
    person_id = (SELECT p.id FROM people p WHERE p.email = users.email),
    accepted_at = CASE WHEN password_hash IS NOT NULL THEN created_at END,
    invited_name = CASE WHEN password_hash IS NULL THEN name END;

DROP INDEX users_active_email;
DROP INDEX users_workspace;
ALTER TABLE users DROP COLUMN email;
ALTER TABLE users DROP COLUMN name;
ALTER TABLE users DROP COLUMN password_hash;

-- A person is an active member of a workspace at most once; removed
-- memberships keep their row for history.
CREATE UNIQUE INDEX users_active_person ON users (workspace_id, person_id) WHERE status = 'active';
CREATE INDEX users_person ON users (person_id);

-- Sessions belong to the person; `user_id` and `workspace_id` are the
-- membership they are currently acting in (the switcher changes them).
ALTER TABLE sessions ADD COLUMN person_id TEXT REFERENCES people (id);
UPDATE sessions SET person_id = (SELECT u.person_id FROM users u WHERE u.id = sessions.user_id);
CREATE INDEX sessions_person ON sessions (person_id);
