-- SQLite cannot drop a column that references another table: the keys
-- leave their plans and the columns stay, unused.
DROP INDEX api_keys_plan;
UPDATE api_keys SET plan_id = NULL, plan_overrides = '';
DROP TABLE plans;
