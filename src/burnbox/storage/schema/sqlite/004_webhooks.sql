-- Webhooks (webhooks.py): as PostgreSQL's 006_webhooks.sql. A registration belongs to one
-- inbox's lifetime (inbox_created); address '*' is the node-wide one. The outbox holds each
-- event to deliver, written in the same transaction as what caused it.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    inbox_created INTEGER NOT NULL,
    url           TEXT NOT NULL,
    secret        TEXT NOT NULL,
    events        TEXT NOT NULL,  -- space-separated
    include_body  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_status   TEXT NOT NULL DEFAULT '',
    last_attempt  INTEGER NOT NULL DEFAULT 0,
    delivered     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_by_address ON webhooks (address);

CREATE TABLE webhook_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT NOT NULL,
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    include_body INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    address      TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);
CREATE INDEX webhook_outbox_by_hook ON webhook_outbox (webhook_id, id);

-- created_at and next_at 0: due at once, and the event's time is its first attempt's, by
-- the service's clock.
CREATE TRIGGER messages_webhooks_received AFTER INSERT ON messages
WHEN EXISTS (SELECT 1 FROM webhooks)
BEGIN
    INSERT INTO webhook_outbox
        (webhook_id, url, secret, include_body, kind, address, message_id, payload, created_at,
         next_at)
    SELECT w.id, w.url, w.secret, w.include_body, 'message.received', NEW.address, NEW.id,
           json_object('id', NEW.id, 'address', NEW.address, 'received_at', NEW.received_at,
                       'expires_at', NEW.expires_at, 'size', NEW.size, 'from', NEW.sender,
                       'to', NEW.recipients, 'subject', NEW.subject, 'snippet', NEW.snippet,
                       'attachments', NEW.attachments, 'message_id', NEW.message_id),
           0, 0
    FROM webhooks w LEFT JOIN inboxes i ON i.address = NEW.address
    WHERE w.address IN (NEW.address, '*')
      AND (' ' || w.events || ' ') LIKE '% message.received %'
      AND (w.address = '*' OR (i.created_at = w.inbox_created AND NEW.received_at >= i.claims_from
                               AND NEW.received_at < i.expires_at));
END;

CREATE TRIGGER messages_webhooks_deleted AFTER DELETE ON messages
WHEN EXISTS (SELECT 1 FROM webhooks)
BEGIN
    INSERT INTO webhook_outbox
        (webhook_id, url, secret, include_body, kind, address, message_id, payload, created_at,
         next_at)
    SELECT w.id, w.url, w.secret, w.include_body, 'message.deleted', OLD.address, OLD.id,
           json_object('id', OLD.id, 'address', OLD.address, 'received_at', OLD.received_at,
                       'expires_at', OLD.expires_at, 'size', OLD.size, 'from', OLD.sender,
                       'to', OLD.recipients, 'subject', OLD.subject, 'snippet', OLD.snippet,
                       'attachments', OLD.attachments, 'message_id', OLD.message_id),
           0, 0
    FROM webhooks w LEFT JOIN inboxes i ON i.address = OLD.address
    WHERE w.address IN (OLD.address, '*')
      AND (' ' || w.events || ' ') LIKE '% message.deleted %'
      AND (w.address = '*' OR (i.created_at = w.inbox_created AND OLD.received_at >= i.claims_from
                               AND OLD.received_at < i.expires_at));
END;
