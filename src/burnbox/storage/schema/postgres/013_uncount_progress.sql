-- How far the counts of a detached partition being dropped have been lowered: its inboxes'
-- counters are lowered a slice of addresses at a time, each slice a short transaction of its
-- own, so that a drop never holds many writers' counter rows at once (one transaction over
-- 50,000 inboxes held ingest up for 0.3 s, bench/resident.py). The row is the slices' lock
-- across nodes and their resume point after a node stops; it goes with the partition.
CREATE TABLE burnbox_uncounting (
    suffix  text PRIMARY KEY,
    through text NOT NULL  -- every address up to this one has been lowered
);
