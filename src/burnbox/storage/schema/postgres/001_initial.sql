-- Times are bigint milliseconds since the epoch (UTC), as in the SQLite store.
CREATE TABLE inboxes (
    address     text PRIMARY KEY,
    token_hash  bytea,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX inboxes_by_expiry ON inboxes (expires_at);

-- Summary rows: what lists and pushes need, never the body.
CREATE TABLE messages (
    address     text NOT NULL,
    id          text NOT NULL,
    received_at bigint NOT NULL,
    expires_at  bigint NOT NULL,
    size        integer NOT NULL,
    sender      text NOT NULL,
    recipients  text NOT NULL,
    subject     text NOT NULL,
    snippet     text NOT NULL,
    attachments integer NOT NULL,
    date        text NOT NULL,
    message_id  text NOT NULL,
    seen        boolean NOT NULL DEFAULT false,
    stored      integer NOT NULL,  -- bytes this row holds (its raw message): caps and metrics
    PRIMARY KEY (address, id)
);
CREATE INDEX messages_by_age ON messages (id);
CREATE INDEX messages_by_expiry ON messages (expires_at);

-- Raw messages, apart from the summary rows (TOAST keeps them out of the index pages).
CREATE TABLE bodies (
    address text NOT NULL,
    id      text NOT NULL,
    raw     bytea NOT NULL,
    PRIMARY KEY (address, id),
    FOREIGN KEY (address, id) REFERENCES messages (address, id) ON DELETE CASCADE
);

-- What every node holds together, kept exact by triggers: the byte cap and the metrics read
-- 16 rows instead of scanning. Sharded by backend, so concurrent writers (workers, nodes) do
-- not queue on one row lock; the totals are the sums.
CREATE TABLE usage_shards (
    shard    integer PRIMARY KEY,
    messages bigint NOT NULL,
    bytes    bigint NOT NULL
);
INSERT INTO usage_shards SELECT shard, 0, 0 FROM generate_series(0, 15) AS shard;
CREATE VIEW usage AS
    SELECT sum(messages)::bigint AS messages, sum(bytes)::bigint AS bytes FROM usage_shards;

-- Messages held per address, so a delivery trims an inbox only when it is over its cap,
-- without counting the inbox's rows every time.
CREATE TABLE address_counts (
    address  text PRIMARY KEY,
    messages integer NOT NULL
);

-- Statement-level triggers with transition tables: a batch inserted in one statement
-- updates the counters once, not once per row.
CREATE FUNCTION burnbox_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage_shards SET messages = messages + added.n, bytes = bytes + added.b
        FROM (SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM inserted) added
        WHERE shard = pg_backend_pid() % 16;
    INSERT INTO address_counts
        SELECT address, count(*) FROM inserted GROUP BY address
        ON CONFLICT (address) DO UPDATE SET messages = address_counts.messages + excluded.messages;
    RETURN NULL;
END $$;

CREATE FUNCTION burnbox_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage_shards SET messages = messages - gone.n, bytes = bytes - gone.b
        FROM (SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM deleted) gone
        WHERE shard = pg_backend_pid() % 16;
    UPDATE address_counts SET messages = address_counts.messages - gone.n
        FROM (SELECT address, count(*) AS n FROM deleted GROUP BY address) gone
        WHERE address_counts.address = gone.address;
    DELETE FROM address_counts WHERE messages <= 0
        AND address IN (SELECT DISTINCT address FROM deleted);
    RETURN NULL;
END $$;

CREATE TRIGGER messages_inserted AFTER INSERT ON messages
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_count_inserted();
CREATE TRIGGER messages_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION burnbox_count_deleted();

-- One delivery batch in one statement (one round trip, one commit): insert the summaries and
-- bodies, trim each inbox that went over its cap, evict the oldest mail while over the byte
-- cap, and answer with what was evicted and the new totals.
CREATE FUNCTION burnbox_add(
    addresses text[], ids text[], received bigint[], expires bigint[], sizes integer[],
    senders text[], recipients text[], subjects text[], snippets text[], attachment_counts integer[],
    dates text[], message_ids text[], seens boolean[], stored_sizes integer[], raws bytea[],
    inbox_max integer, max_bytes bigint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    evicted jsonb := '[]'::jsonb;
    gone jsonb;
    excess bigint;
BEGIN
    INSERT INTO messages (address, id, received_at, expires_at, size, sender, recipients,
                          subject, snippet, attachments, date, message_id, seen, stored)
        SELECT * FROM unnest(addresses, ids, received, expires, sizes, senders, recipients,
                             subjects, snippets, attachment_counts, dates, message_ids, seens,
                             stored_sizes);
    INSERT INTO bodies SELECT * FROM unnest(addresses, ids, raws);
    WITH over AS (
        SELECT c.address FROM address_counts c
        WHERE c.address = ANY(addresses) AND c.messages > inbox_max
    ), trimmed AS (
        DELETE FROM messages m WHERE (m.address, m.id) IN (
            SELECT r.address, r.id FROM (
                SELECT address, id, row_number() OVER (PARTITION BY address ORDER BY id DESC) AS n
                FROM messages WHERE address IN (SELECT address FROM over)) r
            WHERE r.n > inbox_max)
        RETURNING m.address, m.id
    )
    SELECT coalesce(jsonb_agg(jsonb_build_array(address, id)), '[]') INTO gone FROM trimmed;
    evicted := evicted || gone;
    LOOP
        SELECT u.bytes - max_bytes INTO excess FROM usage u;  -- parameters are not columns
        EXIT WHEN excess <= 0;
        WITH oldest AS (
            SELECT address, id, stored AS s, sum(stored) OVER (ORDER BY id) AS running
            FROM (SELECT address, id, stored FROM messages ORDER BY id LIMIT 100) o
        ), removed AS (
            DELETE FROM messages m WHERE (m.address, m.id) IN (
                SELECT address, id FROM oldest WHERE running - s < excess)
            RETURNING m.address, m.id
        )
        SELECT coalesce(jsonb_agg(jsonb_build_array(address, id)), '[]') INTO gone FROM removed;
        EXIT WHEN gone = '[]'::jsonb;
        evicted := evicted || gone;
    END LOOP;
    RETURN jsonb_build_object('evicted', evicted,
                              'messages', (SELECT messages FROM usage),
                              'bytes', (SELECT bytes FROM usage));
END $$;
