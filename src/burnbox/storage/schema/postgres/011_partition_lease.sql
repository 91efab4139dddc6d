-- One node at a time keeps the partitions (storage/partitions.py): two DETACH ... CONCURRENTLY
-- on the same table, or one beside an ATTACH, wait for each other's transactions and deadlock.
-- A session-level advisory lock would not survive a transaction pooler, so the node that
-- keeps them holds a lease in this row, timed by the database's clock (the nodes' may differ).
ALTER TABLE burnbox_partitioning
    ADD COLUMN keeper text NOT NULL DEFAULT '',
    ADD COLUMN lease_until timestamptz NOT NULL DEFAULT '-infinity';
