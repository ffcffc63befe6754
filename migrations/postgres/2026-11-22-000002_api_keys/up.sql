-- API keys and the per-workspace permission catalog.

-- NULL: the workspace's API keys work; a time: all of them were switched off then.
ALTER TABLE workspaces ADD COLUMN api_keys_disabled_at TIMESTAMP;

CREATE TABLE permissions (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    retired_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX permissions_workspace_name ON permissions (workspace_id, name);

CREATE TABLE api_keys (
    id                   TEXT PRIMARY KEY,        -- public id, key_…; never the secret
    workspace_id         TEXT NOT NULL REFERENCES workspaces (id),
    kind                 TEXT NOT NULL CHECK (kind IN ('personal', 'workspace')),
    owner_id             TEXT REFERENCES users (id),
    created_by           TEXT NOT NULL REFERENCES users (id),
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    tags                 TEXT NOT NULL,           -- JSON array of strings
    environment          TEXT NOT NULL CHECK (environment IN ('live', 'test', 'dev')),
    permissions          TEXT NOT NULL,           -- JSON array of permission names
    resources            TEXT NOT NULL,           -- JSON array; empty = whole workspace
    digest               TEXT NOT NULL,           -- SHA-256 of the full key
    head                 TEXT NOT NULL,           -- first characters after the prefix, for prefix search
    tail                 TEXT NOT NULL,           -- last characters, for the masked excerpt
    previous_digest      TEXT,                    -- old secret during a regenerate grace period
    previous_expires_at  TIMESTAMP,
    expires_at           TIMESTAMP,
    rate_limit           INTEGER,                 -- requests per minute; NULL = none
    disabled_at          TIMESTAMP,
    revoked_at           TIMESTAMP,
    revoked_by           TEXT,
    deleted_at           TIMESTAMP,
    creator_removed_at   TIMESTAMP,               -- workspace key whose creator was removed, pending review
    request_nonce        TEXT NOT NULL,           -- the form submission that last created/regenerated it
    search               TEXT NOT NULL,           -- lower-case name, id, owner and tags
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    last_used_at         TIMESTAMP,
    CHECK ((kind = 'personal') = (owner_id IS NOT NULL))
);
CREATE UNIQUE INDEX api_keys_digest ON api_keys (digest);
CREATE UNIQUE INDEX api_keys_previous_digest ON api_keys (previous_digest);
CREATE UNIQUE INDEX api_keys_request_nonce ON api_keys (workspace_id, request_nonce);
-- Keyset pagination, newest first, per workspace, per kind and per owner.
CREATE INDEX api_keys_workspace_recent ON api_keys (workspace_id, created_at DESC, id DESC);
CREATE INDEX api_keys_kind_recent ON api_keys (workspace_id, kind, created_at DESC, id DESC);
CREATE INDEX api_keys_owner_recent ON api_keys (workspace_id, owner_id, created_at DESC, id DESC);
CREATE INDEX api_keys_created_by ON api_keys (workspace_id, created_by);

-- Give workspaces that exist already the default permission catalog (new
-- workspaces get it from the application).
WITH p(name, description) AS (VALUES
    ('data:read', 'Read measurements, production data and reports'),
    ('data:write', 'Create and change data'),
    ('devices:read', 'Read machines, lines and devices'),
    ('devices:write', 'Configure machines, lines and devices'),
    ('reports:export', 'Export reports')
)
INSERT INTO permissions (id, workspace_id, name, description, retired_at, created_at)
SELECT 'prm_' || substr(md5(random()::text || w.id || p.name), 1, 22), w.id, p.name, p.description, NULL, (now() AT TIME ZONE 'utc')
FROM workspaces w CROSS JOIN p;
