-- Leak response (issue 25). Each key remembers the installation prefix it
-- was issued with (KEYWARD_KEY_PREFIX may change later: old keys keep
-- working and keep their excerpt), and why it was revoked when that was a
-- leak report. Each workspace chooses what a leak report does: revoke the
-- key at once (the default) or only report it. Every report is kept.
ALTER TABLE api_keys ADD COLUMN key_prefix TEXT NOT NULL DEFAULT 'sk_';
ALTER TABLE api_keys ADD COLUMN revoked_reason TEXT;
ALTER TABLE workspaces ADD COLUMN leak_response TEXT NOT NULL DEFAULT 'revoke';

CREATE TABLE key_leaks (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    key_id        TEXT NOT NULL REFERENCES api_keys (id),
    -- github (a signed secret scanning alert) or public (the report form)
    source        TEXT NOT NULL,
    url           TEXT,
    reported_at   TIMESTAMP NOT NULL,
    -- Public reports: a keyed hash of the reporter's address, never the
    -- address itself; GitHub's: none.
    reporter      TEXT
);
CREATE INDEX key_leaks_key ON key_leaks (workspace_id, key_id, reported_at);
