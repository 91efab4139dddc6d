-- An inbox's mail is what reached its address from `claims_from` on (milliseconds): a
-- record made again after an earlier inbox at the address ended claims from that end, so
-- nothing of the earlier owner's mail is ever this one's.
-- No index on (address, received_at): reads find an inbox's rows by (address, id) and
-- filter them; the index made every insert into one hot inbox 4.5 times as slow.
ALTER TABLE inboxes ADD COLUMN claims_from bigint NOT NULL DEFAULT 0;
