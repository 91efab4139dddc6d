-- Webhooks (webhooks.py). A registration belongs to one inbox's lifetime (inbox_created);
-- address '*' is the node-wide one (BURNBOX_WEBHOOK_URL). The outbox holds each event to
-- deliver, written in the same transaction as what caused it: the triggers below for
-- messages stored and deleted, the store's own statements for an inbox's end.
CREATE TABLE webhooks (
    id            text PRIMARY KEY,
    address       text NOT NULL,
    inbox_created bigint NOT NULL,
    url           text NOT NULL,
    secret        text NOT NULL,
    events        text[] NOT NULL,
    include_body  boolean NOT NULL,
    created_at    bigint NOT NULL,
    last_status   text NOT NULL DEFAULT '',
    last_attempt  bigint NOT NULL DEFAULT 0,
    delivered     bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_by_address ON webhooks (address);

CREATE TABLE webhook_outbox (
    id           bigserial PRIMARY KEY,
    webhook_id   text NOT NULL,
    url          text NOT NULL,
    secret       text NOT NULL,
    include_body boolean NOT NULL,
    kind         text NOT NULL,
    address      text NOT NULL,
    message_id   text NOT NULL,
    payload      text NOT NULL,
    created_at   bigint NOT NULL,
    next_at      bigint NOT NULL,
    attempts     integer NOT NULL DEFAULT 0
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);
CREATE INDEX webhook_outbox_by_hook ON webhook_outbox (webhook_id, id);

-- created_at and next_at 0: due at once, and the event's time is its first attempt's, by
-- the service's clock (the database's may differ from it).
-- Who is told of a message: the node-wide hook, and the hooks of the inbox that held the
-- address when it came (never a previous owner's).
CREATE FUNCTION burnbox_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
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
    WHERE w.address = '*'
       OR (i.created_at = w.inbox_created AND m.received_at >= i.claims_from
           AND m.received_at < i.expires_at);
    RETURN NULL;
END $$;

CREATE TRIGGER messages_webhooks_received AFTER INSERT ON messages
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION burnbox_webhook_events();
CREATE TRIGGER messages_webhooks_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION burnbox_webhook_events();
