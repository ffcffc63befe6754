-- Room on every page for the rows' next versions, so that the writes key
-- checks cause all the time (a key's "last used" time, its hourly usage
-- counters: columns no index covers) are heap-only (HOT) updates. On full
-- pages each such update was a new row version in every index of api_keys,
-- the trigram index included: a flush of 10k keys' "last used" times took
-- 1.2 s; with room on the pages, 0.2 s (docs/benchmarks.md).
--
-- New pages get the room at once; pages written before keep theirs full
-- until the table is rewritten (`VACUUM FULL api_keys, key_usage;` in a
-- quiet moment, see docs/operations.md). Nothing else changes.
ALTER TABLE api_keys SET (fillfactor = 80);
ALTER TABLE key_usage SET (fillfactor = 80);
