-- First-run setup happens once, however many setup forms or `keyward setup`
-- commands race: the one row of this table can be inserted only once, so
-- the second of two concurrent setups fails on the primary key and rolls
-- back its workspace.
CREATE TABLE instance_setup (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    completed_at  TIMESTAMP NOT NULL
);
-- Instances set up before this migration are marked as set up.
INSERT INTO instance_setup (id, workspace_id, completed_at)
SELECT 1, id, created_at FROM workspaces ORDER BY created_at, id LIMIT 1;
