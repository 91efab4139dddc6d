-- Mail is stored by arrival and expires by the partition (storage/partitions.py).
--
-- Expiring one row at a time wrote every message twice (insert, then delete), left a dead
-- tuple per message for autovacuum, and the database grew at every TTL cycle. Now messages
-- and bodies are partitioned by range of the message id, whose first 48 bits are its
-- arrival in milliseconds (ids.py): a partition holds what arrived in one span of time, and
-- is detached and dropped whole once everything in it has passed its TTL. Reads hide
-- expired mail meanwhile. Row deletes remain for what a user deletes or burns and for the
-- caps.
--
-- Why the id and not received_at: the primary key (address, id) must hold the partition
-- key, and a read by (address, id) is then pruned to one partition. Ids are Crockford
-- base32 (0-9, A-Z without I L O U), which sorts the same in every collation.
--
-- The upgrade is online: the tables as they were become the oldest partitions, attached
-- below a bound past every id they hold (a scan of each validates that, under this
-- migration's locks), and a first partition is made from that bound for the next hour, so
-- nodes of the previous release keep storing mail through burnbox_add, which is unchanged.

-- The first id a message received at `ms` can have (ids.first_id_at), and back.
CREATE FUNCTION burnbox_first_id(ms bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ',
        (CASE WHEN i < 9 THEN (ms >> (43 - 5 * i)) & 31
              WHEN i = 9 THEN (ms & 7) << 2
              ELSE 0 END)::integer + 1, 1), '' ORDER BY i)
    FROM generate_series(0, 23) AS i
$$;

CREATE FUNCTION burnbox_id_ms(id text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT sum((strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, i + 1, 1)) - 1)::bigint
               << (45 - 5 * i))::bigint >> 2
    FROM generate_series(0, 9) AS i
$$;

-- The width every node cuts partitions at: the node that migrates chooses it (a fraction
-- of its message TTL, storage/partitions.py, handed over as burnbox.width_ms), the others
-- read it.
CREATE TABLE burnbox_partitioning (
    width_ms bigint NOT NULL CHECK (width_ms > 0),
    one      boolean PRIMARY KEY DEFAULT true CHECK (one)
);
INSERT INTO burnbox_partitioning (width_ms)
    VALUES (coalesce(nullif(current_setting('burnbox.width_ms', true), '')::bigint, 3600000));

-- Which expired messages have been told (to the hub, as "expired" events): the cursor
-- (expires_at, id) of the last one, kept so that one node tells each once. From the
-- start: what expired before the upgrade and was not purged yet is told at the first purge.
CREATE TABLE burnbox_told (
    expires_at bigint NOT NULL,
    id         text NOT NULL,
    one        boolean PRIMARY KEY DEFAULT true CHECK (one)
);
INSERT INTO burnbox_told (expires_at, id) VALUES (0, '');

-- The tables as they were step aside, with their indexes and without their triggers
-- (a partition may not have triggers with transition tables; the parent has them) or the
-- foreign key (a body now goes with its message by a trigger, or with its partition).
ALTER TABLE messages RENAME TO messages_legacy;
ALTER TABLE bodies RENAME TO bodies_legacy;
ALTER INDEX messages_pkey RENAME TO messages_legacy_pkey;
ALTER INDEX messages_by_age RENAME TO messages_legacy_by_age;
ALTER INDEX messages_by_expiry RENAME TO messages_legacy_by_expiry;
ALTER INDEX bodies_pkey RENAME TO bodies_legacy_pkey;
ALTER TABLE bodies_legacy DROP CONSTRAINT bodies_address_id_fkey;
DROP TRIGGER messages_inserted ON messages_legacy;
DROP TRIGGER messages_deleted ON messages_legacy;
DROP TRIGGER messages_webhooks_received ON messages_legacy;
DROP TRIGGER messages_webhooks_deleted ON messages_legacy;

CREATE TABLE messages (LIKE messages_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (id);
ALTER TABLE messages ADD PRIMARY KEY (address, id);
CREATE INDEX messages_by_age ON messages (id);
CREATE INDEX messages_by_expiry ON messages (expires_at);
CREATE TABLE bodies (LIKE bodies_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (id);
ALTER TABLE bodies ADD PRIMARY KEY (address, id);

CREATE TRIGGER messages_inserted AFTER INSERT ON messages
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_count_inserted();
CREATE TRIGGER messages_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_count_deleted();
CREATE TRIGGER messages_webhooks_received AFTER INSERT ON messages
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION burnbox_webhook_events();
CREATE TRIGGER messages_webhooks_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION burnbox_webhook_events();

CREATE FUNCTION burnbox_bodies_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bodies b USING deleted d WHERE b.address = d.address AND b.id = d.id;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_bodies_follow AFTER DELETE ON messages
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_bodies_follow();

-- The expired messages of a partition about to be dropped, told to the webhooks that would
-- have heard their deletes (the same rule as burnbox_webhook_events), before it goes.
CREATE FUNCTION burnbox_tell_dropped(partition regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks WHERE 'message.deleted' = ANY (events)) THEN
        RETURN;
    END IF;
    EXECUTE format($sql$
        INSERT INTO webhook_outbox
            (webhook_id, url, secret, include_body, kind, address, message_id, payload,
             created_at, next_at)
        SELECT w.id, w.url, w.secret, w.include_body, 'message.deleted', m.address, m.id,
               json_build_object('id', m.id, 'address', m.address,
                                 'received_at', m.received_at, 'expires_at', m.expires_at,
                                 'size', m.size, 'from', m.sender, 'to', m.recipients,
                                 'subject', m.subject, 'snippet', m.snippet,
                                 'attachments', m.attachments,
                                 'message_id', m.message_id)::text,
               0, 0
        FROM %s m
        JOIN webhooks w ON w.address IN (m.address, '*') AND 'message.deleted' = ANY (w.events)
        LEFT JOIN inboxes i ON i.address = m.address
        WHERE CASE WHEN w.address = '*'
                   THEN NOT coalesce(i.end_told AND m.received_at >= i.claims_from
                                     AND m.received_at <= i.expires_at, false)
                   ELSE i.created_at = w.inbox_created AND m.received_at >= i.claims_from
                        AND m.received_at < i.expires_at END
    $sql$, partition);
END $$;

-- The tables as they were become the oldest partitions, and the first new one follows, one
-- width wide: the migrating node makes the next ones as it opens.
DO $$
DECLARE
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    newest text := (SELECT max(id) FROM messages_legacy);
    top_ms bigint := greatest(now_ms, coalesce(burnbox_id_ms(newest), 0)) + 1;
    bound text := burnbox_first_id(top_ms);
    next_bound text := burnbox_first_id(top_ms + (SELECT width_ms FROM burnbox_partitioning));
BEGIN
    EXECUTE format('ALTER TABLE messages ATTACH PARTITION messages_legacy '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    EXECUTE format('ALTER TABLE bodies ATTACH PARTITION bodies_legacy '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    EXECUTE format('CREATE TABLE messages_p%s PARTITION OF messages FOR VALUES FROM (%L) TO (%L)',
                   top_ms, bound, next_bound);
    EXECUTE format('CREATE TABLE bodies_p%s PARTITION OF bodies FOR VALUES FROM (%L) TO (%L)',
                   top_ms, bound, next_bound);
END $$;
