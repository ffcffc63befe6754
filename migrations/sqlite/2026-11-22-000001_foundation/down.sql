DROP TABLE events;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE workspaces;
