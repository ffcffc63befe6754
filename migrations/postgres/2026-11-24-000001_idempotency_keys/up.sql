-- The management API's Idempotency-Key: a retried create or regenerate
-- (same acting key, same header value, within 24 hours) answers with the
-- key it made the first time instead of making another. Rows are per
-- acting key, so one client's header values never collide with another's.
CREATE TABLE idempotency_keys (
    actor_key_id     TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    -- What the first request did ("create", "regenerate"), and a digest of
    -- its target and body: the same header value with another request is
    -- refused rather than answered with an unrelated key.
    operation        TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (actor_key_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
