-- Every inbox's end is told once, from one place (end_webhooks for an expiry, burn_inbox
-- for a burn): to the inbox's own hooks and to the node-wide one alike. end_told records
-- that it was; the ends before this migration count as told.
ALTER TABLE inboxes ADD COLUMN end_told boolean NOT NULL DEFAULT false;
UPDATE inboxes SET end_told = true
    WHERE expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
CREATE INDEX inboxes_untold_ends ON inboxes (expires_at) WHERE NOT end_told;

-- Each event gets an id of its own when it is written (Standard Webhooks' webhook-id),
-- 128 random bits: a serial repeats once the database is made again, this never does.
ALTER TABLE webhook_outbox ADD COLUMN event_id text NOT NULL
    DEFAULT ('evt_' || replace(gen_random_uuid()::text, '-', ''));

-- Who is told of a message: the hooks of the inbox that held the address when it came, and
-- the node-wide ones, which hear what every inbox's own hook would: not the mail of an
-- inbox whose end was told going after it (its own hooks are gone by then), up to and
-- including its last moment (a burn takes what came in that very millisecond too).
CREATE OR REPLACE FUNCTION burnbox_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event text := CASE TG_OP WHEN 'INSERT' THEN 'message.received' ELSE 'message.deleted' END;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_outbox
        (webhook_id, url, secret, include_body, kind, address, message_id, payload, created_at,
         next_at)
    SELECT w.id, w.url, w.secret, w.include_body, event, m.address, m.id,
           json_build_object('id', m.id, 'address', m.address, 'received_at', m.received_at,
                             'expires_at', m.expires_at, 'size', m.size, 'from', m.sender,
                             'to', m.recipients, 'subject', m.subject, 'snippet', m.snippet,
                             'attachments', m.attachments, 'message_id', m.message_id)::text,
           0, 0
    FROM changed m
    JOIN webhooks w ON w.address IN (m.address, '*') AND event = ANY (w.events)
    LEFT JOIN inboxes i ON i.address = m.address
    WHERE CASE WHEN w.address = '*'
               THEN NOT coalesce(i.end_told AND m.received_at >= i.claims_from
                                 AND m.received_at <= i.expires_at, false)
               ELSE i.created_at = w.inbox_created AND m.received_at >= i.claims_from
                    AND m.received_at < i.expires_at END;
    RETURN NULL;
END $$;
