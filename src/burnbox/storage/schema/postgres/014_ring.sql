-- Mail is kept in a ring of 32 partitions, emptied in place (storage/ring.py).
--
-- Range partitions (010) ended row-by-row expiry, but each one was made, attached,
-- detached and dropped: about 130 rows of the system catalogs (pg_attribute, pg_depend,
-- pg_class...) deleted per partition, 26% of the messages sent at a 10 s TTL
-- (bench/retention.py), and the catalogs bloat. Now the partitions are made once and never
-- dropped: a message goes to the partition named by one character of its id, which counts
-- spans of a fixed width (a power of two of milliseconds, chosen from the TTL by the node
-- that migrates, as burnbox.slot_position) and so comes round every 32 spans; once every
-- message of a span has expired and been told, its partition is emptied by TRUNCATE, which
-- deletes no row anywhere (a new file for the table, its pg_class row updated).
--
-- The partition key is an expression (burnbox_slot), so the parents can have no primary
-- key: each partition has its own on (address, id), which is as good, since one id always
-- goes to the same partition. A read by id names burnbox_slot(id) to be pruned to one.
--
-- The upgrade is online, as 010's: the tables as they were become one more partition, '-',
-- for every id before the cutover (the moment after the newest id they hold); it goes whole once
-- all of its mail has expired. Nodes of the previous release store through burnbox_add,
-- unchanged; they no longer keep partitions (their lease is taken for good), and a node of
-- the previous release cannot start once this has run.

ALTER TABLE burnbox_partitioning
    ADD COLUMN slot_position integer NOT NULL DEFAULT 5 CHECK (slot_position BETWEEN 1 AND 8),
    ADD COLUMN cutover text NOT NULL DEFAULT '',
    ADD COLUMN ring_keeper text NOT NULL DEFAULT '',
    ADD COLUMN ring_lease_until timestamptz NOT NULL DEFAULT '-infinity';
UPDATE burnbox_partitioning SET
    slot_position = coalesce(nullif(current_setting('burnbox.slot_position', true), '')::integer, 5),
    keeper = 'the ring (014_ring.sql)', lease_until = 'infinity';

ALTER TABLE messages RENAME TO messages_range;
ALTER TABLE bodies RENAME TO bodies_range;
ALTER INDEX messages_pkey RENAME TO messages_range_pkey;
ALTER INDEX messages_by_age RENAME TO messages_range_by_age;
ALTER INDEX messages_by_expiry RENAME TO messages_range_by_expiry;
ALTER INDEX bodies_pkey RENAME TO bodies_range_pkey;
DROP TRIGGER messages_inserted ON messages_range;
DROP TRIGGER messages_deleted ON messages_range;
DROP TRIGGER messages_webhooks_received ON messages_range;
DROP TRIGGER messages_webhooks_deleted ON messages_range;
DROP TRIGGER messages_bodies_follow ON messages_range;

-- The cutover, and the key: '-' before it, else the id's character at slot_position. The
-- cutover is just past the newest id held (none held: '', nothing before it), not the
-- database's now: a node whose clock is a little behind the database's still stores in
-- the ring.
DO $$
DECLARE
    newest text := (SELECT max(id) FROM messages_range);
    bound text := CASE WHEN newest IS NULL THEN ''
                       ELSE burnbox_first_id(burnbox_id_ms(newest) + 1) END;
BEGIN
    UPDATE burnbox_partitioning SET cutover = bound;
    EXECUTE format($f$
        CREATE FUNCTION burnbox_slot(id text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $b$ SELECT CASE WHEN id < %L THEN '-' ELSE substr(id, %s, 1) END $b$
    $f$, bound, (SELECT slot_position FROM burnbox_partitioning));
END $$;

CREATE TABLE messages (LIKE messages_range INCLUDING DEFAULTS) PARTITION BY LIST (burnbox_slot(id));
CREATE INDEX messages_by_age ON messages (id);
CREATE INDEX messages_by_expiry ON messages (expires_at);
CREATE TABLE bodies (LIKE bodies_range INCLUDING DEFAULTS) PARTITION BY LIST (burnbox_slot(id));

DO $$
DECLARE
    slot text;
BEGIN
    FOREACH slot IN ARRAY string_to_array('0123456789ABCDEFGHJKMNPQRSTVWXYZ', NULL) LOOP
        EXECUTE format('CREATE TABLE messages_s%s PARTITION OF messages FOR VALUES IN (%L)',
                       slot, slot);
        EXECUTE format('ALTER TABLE messages_s%s ADD PRIMARY KEY (address, id)', slot);
        EXECUTE format('CREATE TABLE bodies_s%s PARTITION OF bodies FOR VALUES IN (%L)',
                       slot, slot);
        EXECUTE format('ALTER TABLE bodies_s%s ADD PRIMARY KEY (address, id)', slot);
    END LOOP;
    -- The mail held before the cutover: one partition more (its rows are scanned once, under
    -- this migration's locks, to check they belong there); nothing held: the old tables go.
    IF EXISTS (SELECT 1 FROM messages_range) THEN
        ALTER TABLE messages ATTACH PARTITION messages_range FOR VALUES IN ('-');
        ALTER TABLE bodies ATTACH PARTITION bodies_range FOR VALUES IN ('-');
    ELSE
        DROP TABLE messages_range, bodies_range;
    END IF;
END $$;

CREATE TRIGGER messages_inserted AFTER INSERT ON messages
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_count_inserted();
CREATE TRIGGER messages_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_count_deleted();
CREATE TRIGGER messages_webhooks_received AFTER INSERT ON messages
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION burnbox_webhook_events();
CREATE TRIGGER messages_webhooks_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION burnbox_webhook_events();
CREATE TRIGGER messages_bodies_follow AFTER DELETE ON messages
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_bodies_follow();

-- What an emptied partition held, per inbox, until the inboxes' counters are lowered by it:
-- noted a slice of inboxes at a time under an attempt number, before the partition is
-- emptied, and checked under its lock (storage/emptying.py); then a slice of inboxes at a
-- time, each a short transaction, in address order as every writer locks them. Truncated
-- once all is lowered: no row deleted.
CREATE TABLE burnbox_emptied (
    attempt bigint NOT NULL,
    address text NOT NULL,
    n       bigint NOT NULL
);
CREATE INDEX burnbox_emptied_by_attempt ON burnbox_emptied (attempt, address);
-- The attempts of the partitions emptied, in the order they were (seq), to be lowered.
CREATE TABLE burnbox_published (
    seq     bigint PRIMARY KEY,
    attempt bigint NOT NULL
);
-- Which one is being lowered and how far (every address up to `through`), the last one
-- published, and how many times the notes were truncated (an attempt noted before a
-- truncate lost its rows); the row is also the lock that orders publishing and slices
-- across nodes.
CREATE TABLE burnbox_draining (
    seq        bigint NOT NULL,
    through    text NOT NULL,
    queued     bigint NOT NULL,
    generation bigint NOT NULL,
    one        boolean PRIMARY KEY DEFAULT true CHECK (one)
);
INSERT INTO burnbox_draining (seq, through, queued, generation) VALUES (0, '', 0, 0);
