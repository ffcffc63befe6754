-- SQLite serves one instance (a second one on the same file refuses to
-- start), so its change feed is only the in-process one (db::changes).
-- This migration keeps the version stamps of both backends in step.
SELECT 1;
