-- Within an inbox, message ids follow commit order, whichever node wrote them.
--
-- Each node proposes ids from its own clock, so without this a node whose clock is behind, or
-- whose commit was slower, could commit a message with an id below one a client has already
-- seen, and a `Last-Event-ID` catch-up ("everything newer") would miss it for good. A batch
-- now first locks the counter row of each inbox it writes (in address order, so batches never
-- deadlock on them); the row remembers the newest id committed there, and a proposed id at or
-- below it is moved just past it. The lock is held to COMMIT, so the next writer of that inbox
-- sees the new newest id: ids within one inbox increase in commit order.

ALTER TABLE address_counts ADD COLUMN last_id text NOT NULL DEFAULT '';
UPDATE address_counts c SET last_id = coalesce(
    (SELECT max(m.id) FROM messages m WHERE m.address = c.address), '');

-- The next id after `previous` in the Crockford base32 alphabet ids are written in.
CREATE FUNCTION burnbox_next_id(previous text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    position integer := length(previous);
BEGIN
    WHILE position > 1 AND substr(previous, position, 1) = 'Z' LOOP
        position := position - 1;
    END LOOP;
    RETURN substr(previous, 1, position - 1)
        || substr(alphabet, strpos(alphabet, substr(previous, position, 1)) + 1, 1)
        || repeat('0', length(previous) - position);
END $$;

-- Counter rows now outlive their last message (they carry last_id); purge_expired drops the
-- empty ones once no commit from that time can still be in flight.
CREATE OR REPLACE FUNCTION burnbox_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage_shards SET messages = messages + added.n, bytes = bytes + added.b
        FROM (SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM inserted) added
        WHERE shard = pg_backend_pid() % 16;
    INSERT INTO address_counts
        SELECT address, count(*), max(id) FROM inserted GROUP BY address
        ON CONFLICT (address) DO UPDATE SET
            messages = address_counts.messages + excluded.messages,
            last_id = greatest(address_counts.last_id, excluded.last_id);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION burnbox_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage_shards SET messages = messages - gone.n, bytes = bytes - gone.b
        FROM (SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM deleted) gone
        WHERE shard = pg_backend_pid() % 16;
    UPDATE address_counts SET messages = address_counts.messages - gone.n
        FROM (SELECT address, count(*) AS n FROM deleted GROUP BY address) gone
        WHERE address_counts.address = gone.address;
    RETURN NULL;
END $$;

-- The same call as before, plus the ordering step; the answer carries "ids" only when one
-- was moved. Each batch costs a fixed amount of work here, whatever its size, so the steps
-- that are rarely needed (moving ids, trimming an inbox, evicting for the byte cap) run only
-- when a cheap check says so, and the totals are read once.
CREATE OR REPLACE FUNCTION burnbox_add(
    addresses text[], ids text[], received bigint[], expires bigint[], sizes integer[],
    senders text[], recipients text[], subjects text[], snippets text[], attachment_counts integer[],
    dates text[], message_ids text[], seens boolean[], stored_sizes integer[], raws bytea[],
    inbox_max integer, max_bytes bigint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    newest jsonb;
    over_cap boolean;
    moved boolean := false;
    evicted jsonb := '[]'::jsonb;
    gone jsonb;
    held bigint;
    held_bytes bigint;
BEGIN
    WITH locked AS (
        INSERT INTO address_counts AS c (address, messages, last_id)
            SELECT DISTINCT address, 0, '' FROM unnest(addresses) AS address ORDER BY address
            ON CONFLICT (address) DO UPDATE SET messages = c.messages
            RETURNING c.address, c.last_id, c.messages
    ), arriving AS (
        SELECT address, count(*) AS n FROM unnest(addresses) AS address GROUP BY address
    )
    SELECT jsonb_object_agg(l.address, l.last_id), bool_or(l.messages + a.n > inbox_max)
        INTO newest, over_cap
        FROM locked l JOIN arriving a USING (address);
    -- A batch's own ids already increase (one node's clock): only a clash with another
    -- writer's commit needs the walk.
    IF EXISTS (SELECT 1 FROM unnest(addresses, ids) AS b(address, id)
               WHERE b.id <= newest ->> b.address) THEN
        moved := true;
        FOR n IN 1 .. array_length(ids, 1) LOOP
            IF ids[n] <= newest ->> addresses[n] THEN
                ids[n] := burnbox_next_id(newest ->> addresses[n]);
            END IF;
            newest := jsonb_set(newest, ARRAY[addresses[n]], to_jsonb(ids[n]));
        END LOOP;
    END IF;

    INSERT INTO messages (address, id, received_at, expires_at, size, sender, recipients,
                          subject, snippet, attachments, date, message_id, seen, stored)
        SELECT * FROM unnest(addresses, ids, received, expires, sizes, senders, recipients,
                             subjects, snippets, attachment_counts, dates, message_ids, seens,
                             stored_sizes);
    INSERT INTO bodies SELECT * FROM unnest(addresses, ids, raws);

    IF over_cap THEN  -- keep the newest inbox_max of each inbox that went over
        WITH trimmed AS (
            DELETE FROM messages m WHERE (m.address, m.id) IN (
                SELECT r.address, r.id FROM (
                    SELECT address, id,
                           row_number() OVER (PARTITION BY address ORDER BY id DESC) AS n
                    FROM messages WHERE address IN (
                        SELECT c.address FROM address_counts c
                        WHERE c.address = ANY(addresses) AND c.messages > inbox_max)) r
                WHERE r.n > inbox_max)
            RETURNING m.address, m.id
        )
        SELECT coalesce(jsonb_agg(jsonb_build_array(address, id)), '[]') INTO gone FROM trimmed;
        evicted := evicted || gone;
    END IF;

    SELECT sum(u.messages), sum(u.bytes) INTO held, held_bytes FROM usage_shards u;
    WHILE held_bytes > max_bytes LOOP  -- oldest first, until the store is under its byte cap
        WITH oldest AS (
            SELECT address, id, stored AS s, sum(stored) OVER (ORDER BY id) AS running
            FROM (SELECT address, id, stored FROM messages ORDER BY id LIMIT 100) o
        ), removed AS (
            DELETE FROM messages m WHERE (m.address, m.id) IN (
                SELECT address, id FROM oldest WHERE running - s < held_bytes - max_bytes)
            RETURNING m.address, m.id
        )
        SELECT coalesce(jsonb_agg(jsonb_build_array(address, id)), '[]') INTO gone FROM removed;
        EXIT WHEN gone = '[]'::jsonb;
        evicted := evicted || gone;
        SELECT sum(u.messages), sum(u.bytes) INTO held, held_bytes FROM usage_shards u;
    END LOOP;

    IF moved THEN
        RETURN jsonb_build_object('evicted', evicted, 'messages', held, 'bytes', held_bytes,
                                  'ids', to_jsonb(ids));
    END IF;
    RETURN jsonb_build_object('evicted', evicted, 'messages', held, 'bytes', held_bytes);
END $$;
