-- Times are integer milliseconds since the epoch (UTC): they sort and compare as numbers.
CREATE TABLE inboxes (
    address     TEXT PRIMARY KEY,
    token_hash  BLOB,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX inboxes_by_expiry ON inboxes (expires_at);

-- One row per message and inbox: what lists and pushes need, never the body.
CREATE TABLE messages (
    address     TEXT NOT NULL,
    id          TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    sender      TEXT NOT NULL,
    recipients  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    snippet     TEXT NOT NULL,
    attachments INTEGER NOT NULL,
    date        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    seen        INTEGER NOT NULL DEFAULT 0,
    stored      INTEGER NOT NULL,  -- bytes this row holds (its raw message): caps and metrics
    PRIMARY KEY (address, id)
) WITHOUT ROWID;
CREATE INDEX messages_by_age ON messages (id);
CREATE INDEX messages_by_expiry ON messages (expires_at);

-- The raw message, apart from its summary row, gone with it.
CREATE TABLE bodies (
    address TEXT NOT NULL,
    id      TEXT NOT NULL,
    raw     BLOB NOT NULL,
    PRIMARY KEY (address, id),
    FOREIGN KEY (address, id) REFERENCES messages (address, id) ON DELETE CASCADE
) WITHOUT ROWID;
