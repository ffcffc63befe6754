DROP TABLE events;
DROP FUNCTION events_append_only();
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE workspaces;
