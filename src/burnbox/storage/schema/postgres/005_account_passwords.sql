-- An inbox made as a mail.tm account (accounts.py) keeps its owner's password as a slow
-- scrypt hash; NULL for every other inbox.
ALTER TABLE inboxes ADD COLUMN password_hash bytea;
