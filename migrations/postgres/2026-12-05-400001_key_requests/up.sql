-- Recent checks of each key (issue 27): when, from where, on which route,
-- with what result and with which secret. Written in batches by the
-- verifier's flush, pruned to KEYWARD_REQUEST_LOG_PER_KEY rows a key and
-- KEYWARD_REQUEST_LOG_DAYS days. Never the key, an Authorization header or
-- a query string.
CREATE TABLE key_requests (
    id            BIGSERIAL PRIMARY KEY,
    key_id        TEXT NOT NULL REFERENCES api_keys (id),
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    at            TIMESTAMP NOT NULL,
    ip            TEXT,
    method        TEXT,
    path          TEXT,
    outcome       TEXT NOT NULL,
    client        TEXT,
    secret        TEXT NOT NULL,          -- 'current' or 'previous'
    one_in        INTEGER NOT NULL DEFAULT 1  -- 1: every check recorded; n: one in n (a busy key)
);
CREATE INDEX key_requests_key ON key_requests (key_id, id);
CREATE INDEX key_requests_at ON key_requests (at);
