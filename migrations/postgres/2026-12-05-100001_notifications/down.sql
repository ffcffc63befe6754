DROP TABLE reminder_settings;
DROP TABLE mailed_events;
DROP TABLE reminder_optouts;
DROP TABLE expiry_reminders;
DROP TABLE mail_outbox;
DROP TABLE webhook_attempts;
DROP TABLE outbox;
DROP TABLE webhook_endpoints;
