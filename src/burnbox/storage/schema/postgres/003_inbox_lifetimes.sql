-- An inbox's mail is what reached its address from `claims_from` on (milliseconds): a
-- record made again after an earlier inbox at the address ended claims from that end, so
-- nothing of the earlier owner's mail is ever this one's.
ALTER TABLE inboxes ADD COLUMN claims_from bigint NOT NULL DEFAULT 0;
CREATE INDEX messages_by_arrival ON messages (address, received_at);
