-- Notifications: a workspace's webhook endpoints, the outbox of deliveries
-- (written in the same transaction as the audit event they carry), and the
-- delivery log.

CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    workspace_id          TEXT NOT NULL REFERENCES workspaces (id),
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    -- Comma-separated event types (`key.revoked`), `key.*`, or `*`.
    event_types           TEXT NOT NULL,
    -- The signing secret, sealed with a key derived from KEYWARD_SECRET
    -- (never stored as it was shown).
    secret                TEXT NOT NULL,
    -- After a roll, the previous secret keeps signing until this time.
    previous_secret       TEXT,
    previous_expires_at   TIMESTAMP,
    -- Set when deliveries gave up after a day of retries; cleared by the
    -- next successful delivery.
    failing_since         TIMESTAMP,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, created_at);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,  -- msg_…, the webhook-id (same on every attempt)
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    next_attempt_at  TIMESTAMP NOT NULL,
    -- An instance working on the row holds it until this time; a crashed
    -- instance's claim lapses and another delivers (at least once).
    claimed_until    TIMESTAMP,
    attempts         INTEGER NOT NULL DEFAULT 0,
    done_at          TIMESTAMP,
    -- delivered | failed
    outcome          TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE done_at IS NULL;
CREATE INDEX outbox_endpoint ON outbox (endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    endpoint_id    TEXT NOT NULL REFERENCES webhook_endpoints (id),
    outbox_id      TEXT NOT NULL REFERENCES outbox (id),
    event_type     TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    attempted_at   TIMESTAMP NOT NULL,
    -- The HTTP status, or NULL when no answer came (refused, timed out).
    status         INTEGER,
    latency_ms     INTEGER NOT NULL,
    -- The first bytes of the answer, or why there was none.
    response_head  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, attempted_at DESC);

-- Email: messages waiting for the SMTP server (sent by the worker, never
-- inside a request), expiry reminders already queued (one row per key and
-- threshold: the primary key makes each reminder happen once, across
-- restarts and instances), and who turned reminders off.
CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    next_attempt_at  TIMESTAMP NOT NULL,
    claimed_until    TIMESTAMP,
    attempts         INTEGER NOT NULL DEFAULT 0,
    done_at          TIMESTAMP,
    outcome          TEXT,
    last_error       TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE done_at IS NULL;

CREATE TABLE expiry_reminders (
    key_id          TEXT NOT NULL REFERENCES api_keys (id),
    threshold_days  INTEGER NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (key_id, threshold_days)
);

CREATE TABLE reminder_optouts (
    person_id   TEXT PRIMARY KEY REFERENCES people (id),
    created_at  TIMESTAMP NOT NULL
);

-- Audit events that are told by email (`key.leaked`) and already were:
-- the primary key makes each told once, across instances.
CREATE TABLE mailed_events (
    event_id    TEXT PRIMARY KEY,
    created_at  TIMESTAMP NOT NULL
);

-- When a workspace's expiry reminders go out (days before expiry, comma-
-- separated; 0 is at expiry). No row: the default, 14,7,1,0.
CREATE TABLE reminder_settings (
    workspace_id  TEXT PRIMARY KEY REFERENCES workspaces (id),
    days          TEXT NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
