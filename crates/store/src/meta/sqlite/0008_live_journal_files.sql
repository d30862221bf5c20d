-- Live chunks move out of SQLite into the segment journal beside the database
-- (docs/FORMAT.md, "Live journal segments"): as rows, each chunk was written twice and through
-- the single writer's B-tree, which capped live ingest. No release ever held chunks here; a
-- development database loses the chunks of calls that were in progress when it is upgraded.
DROP TABLE live_chunks;
