CREATE TABLE events_old (
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
INSERT INTO events_old (id, workspace_id, actor_id, actor_label, action, target_type,
                        target_id, target_label, ip, user_agent, details, created_at)
SELECT seq, workspace_id, actor_id, actor_label, action, target_type, target_id,
       target_label, ip, user_agent, details, created_at
FROM events;
DROP TABLE events;
ALTER TABLE events_old RENAME TO events;
CREATE INDEX events_workspace_recent ON events (workspace_id, id DESC);
CREATE INDEX events_workspace_target ON events (workspace_id, target_id, id DESC);
CREATE INDEX events_workspace_action ON events (workspace_id, action, id DESC);
CREATE INDEX events_workspace_actor ON events (workspace_id, actor_label, id DESC);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
