DROP TABLE webhook_attempts;
DROP TABLE outbox;
DROP TABLE webhook_endpoints;
