-- A usage shard that no writer uses (writers take pg_backend_pid() % 16): a partition dropped
-- whole lowers the totals here, so the drop, which holds its locks while the partition's
-- table goes, never holds a writer's shard row meanwhile. The totals stay the sums of every
-- row.
INSERT INTO usage_shards (shard, messages, bytes) VALUES (16, 0, 0) ON CONFLICT DO NOTHING;
