-- SQLite's change feed is in-process (see 2026-11-23-000002); this keeps
-- the version stamps of both backends in step.
SELECT 1;
