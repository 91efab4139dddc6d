-- Who really sent a message (trust/): the sender checks' results, as RFC 8601 words and
-- properties; '' while not checked. burnbox_add takes them with the other fields, in the
-- order of model.MessageSummary's (004_eviction_apart.sql says why that order).
ALTER TABLE messages ADD COLUMN auth text NOT NULL DEFAULT '';
DROP FUNCTION burnbox_add(text[], text[], bigint[], bigint[], integer[], text[], text[], text[],
                          integer[], text[], text[], text[], boolean[], integer[], bytea[],
                          integer);
CREATE FUNCTION burnbox_add(
    ids text[], addresses text[], received bigint[], expires bigint[], sizes integer[],
    senders text[], subjects text[], snippets text[], attachment_counts integer[],
    dates text[], message_ids text[], recipients text[], seens boolean[], auths text[],
    stored_sizes integer[], raws bytea[], inbox_max integer
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

    INSERT INTO messages (id, address, received_at, expires_at, size, sender, subject, snippet,
                          attachments, date, message_id, recipients, seen, auth, stored)
        SELECT * FROM unnest(ids, addresses, received, expires, sizes, senders, subjects,
                             snippets, attachment_counts, dates, message_ids, recipients, seens,
                             auths, stored_sizes);
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

    IF moved THEN
        RETURN jsonb_build_object('evicted', evicted, 'messages', held, 'bytes', held_bytes,
                                  'ids', to_jsonb(ids));
    END IF;
    RETURN jsonb_build_object('evicted', evicted, 'messages', held, 'bytes', held_bytes);
END $$;
