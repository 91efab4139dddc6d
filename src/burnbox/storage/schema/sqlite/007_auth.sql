-- Who really sent a message (trust/): the sender checks' results, as RFC 8601 words and
-- properties; '' while not checked.
ALTER TABLE messages ADD COLUMN auth TEXT NOT NULL DEFAULT '';
