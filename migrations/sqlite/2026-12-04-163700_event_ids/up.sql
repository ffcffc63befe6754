-- Event ids were one sequence across all workspaces, so a workspace could
-- tell how busy the others were from the gaps between its own ids. The
-- public id is now random and prefixed like every other table's
-- (`evt_…`); the sequence stays, renamed `seq`, as the private order that
-- pages of events are cut by.
--
-- SQLite cannot add a NOT NULL column without a constant default, and an
-- UPDATE would meet the append-only trigger, so the table is rebuilt with
-- every event copied as it was (same order, same seq).
CREATE TABLE events_new (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL,
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
INSERT INTO events_new (seq, id, workspace_id, actor_id, actor_label, action, target_type,
                        target_id, target_label, ip, user_agent, details, created_at)
SELECT id, 'evt_' || substr(lower(hex(randomblob(11))), 1, 22), workspace_id, actor_id,
       actor_label, action, target_type, target_id, target_label, ip, user_agent, details,
       created_at
FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;

CREATE UNIQUE INDEX events_id ON events (id);
CREATE INDEX events_workspace_recent ON events (workspace_id, seq DESC);
CREATE INDEX events_workspace_target ON events (workspace_id, target_id, seq DESC);
CREATE INDEX events_workspace_action ON events (workspace_id, action, seq DESC);
CREATE INDEX events_workspace_actor ON events (workspace_id, actor_label, seq DESC);

-- The audit trail is append-only, whatever the application does.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
