-- Every inbox's end is told once, from one place (end_webhooks for an expiry, burn_inbox
-- for a burn): to the inbox's own hooks and to the node-wide one alike. end_told records
-- that it was; the ends before this migration count as told.
ALTER TABLE inboxes ADD COLUMN end_told INTEGER NOT NULL DEFAULT 0;
UPDATE inboxes SET end_told = 1
    WHERE expires_at <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
CREATE INDEX inboxes_untold_ends ON inboxes (expires_at) WHERE end_told = 0;

-- Each event gets an id of its own when it is written (Standard Webhooks' webhook-id),
-- 128 random bits: a row id repeats once the file is made again, this never does. SQLite
-- cannot add a column with such a default, so the outbox is made again.
DROP TRIGGER messages_webhooks_received;
DROP TRIGGER messages_webhooks_deleted;
CREATE TABLE webhook_outbox_v2 (
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
    attempts     INTEGER NOT NULL DEFAULT 0,
    event_id     TEXT NOT NULL DEFAULT ('evt_' || lower(hex(randomblob(16))))
);
INSERT INTO webhook_outbox_v2 (id, webhook_id, url, secret, include_body, kind, address,
                               message_id, payload, created_at, next_at, attempts)
    SELECT id, webhook_id, url, secret, include_body, kind, address, message_id, payload,
           created_at, next_at, attempts FROM webhook_outbox;
DROP TABLE webhook_outbox;
ALTER TABLE webhook_outbox_v2 RENAME TO webhook_outbox;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);
CREATE INDEX webhook_outbox_by_hook ON webhook_outbox (webhook_id, id);

-- Who is told of a message: the hooks of the inbox that held the address when it came, and
-- the node-wide ones, which hear what every inbox's own hook would: not the mail of an
-- inbox whose end was told going after it (its own hooks are gone by then), up to and
-- including its last moment (a burn takes what came in that very millisecond too).
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
      AND CASE WHEN w.address = '*'
               THEN NOT coalesce(i.end_told AND NEW.received_at >= i.claims_from
                                 AND NEW.received_at <= i.expires_at, 0)
               ELSE i.created_at = w.inbox_created AND NEW.received_at >= i.claims_from
                    AND NEW.received_at < i.expires_at END;
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
      AND CASE WHEN w.address = '*'
               THEN NOT coalesce(i.end_told AND OLD.received_at >= i.claims_from
                                 AND OLD.received_at <= i.expires_at, 0)
               ELSE i.created_at = w.inbox_created AND OLD.received_at >= i.claims_from
                    AND OLD.received_at < i.expires_at END;
END;
