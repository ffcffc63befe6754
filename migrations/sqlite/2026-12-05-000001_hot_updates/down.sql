-- PostgreSQL's migration of the same name leaves room on api_keys' and
-- key_usage's pages for frequent updates. SQLite rewrites a row in place
-- and has no such setting; this keeps both migration lists alike.
SELECT 1;
