-- Event ids were one sequence across all workspaces, so a workspace could
-- tell how busy the others were from the gaps between its own ids. The
-- public id is now random and prefixed like every other table's
-- (`evt_…`); the sequence stays, renamed `seq`, as the private order that
-- pages of events are cut by.
ALTER TABLE events RENAME COLUMN id TO seq;
-- A volatile default is evaluated once per existing row while the table is
-- rewritten; no UPDATE runs, so the append-only trigger is not involved.
ALTER TABLE events
    ADD COLUMN id TEXT NOT NULL
    DEFAULT ('evt_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 22));
-- New events get their id from the application (`ids::new_id`).
ALTER TABLE events ALTER COLUMN id DROP DEFAULT;
CREATE UNIQUE INDEX events_id ON events (id);
