-- Workspaces, users, sessions and the append-only audit trail.
-- Timestamps are UTC (TIMESTAMP without time zone, written by the app).

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces (id),
    email              TEXT NOT NULL,
    name               TEXT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('admin', 'normal', 'operator')),
    password_hash      TEXT,
    status             TEXT NOT NULL CHECK (status IN ('active', 'removed')),
    invite_digest      TEXT,
    invite_expires_at  TIMESTAMP,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    removed_at         TIMESTAMP
);
-- An email signs in to exactly one active account; removed accounts keep
-- their row (and history) and free the address.
CREATE UNIQUE INDEX users_active_email ON users (email) WHERE status = 'active';
CREATE INDEX users_workspace ON users (workspace_id, email);
CREATE UNIQUE INDEX users_invite_digest ON users (invite_digest);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,  -- SHA-256 of the secret kept in the cookie
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    user_id       TEXT NOT NULL REFERENCES users (id),
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    actor_id      TEXT,
    actor_label   TEXT NOT NULL,
    action        TEXT NOT NULL,
    target_type   TEXT,
    target_id     TEXT,
    target_label  TEXT,
    ip            TEXT,
    user_agent    TEXT,
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX events_workspace_recent ON events (workspace_id, id DESC);
CREATE INDEX events_workspace_target ON events (workspace_id, target_id, id DESC);

-- The audit trail is append-only, whatever the application does.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
