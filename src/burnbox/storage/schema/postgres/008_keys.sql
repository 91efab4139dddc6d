-- Keys the deployment keeps for itself (handles.py): made by the first node that needs one,
-- read by every other, so a capability sealed on one node opens on all of them.
CREATE TABLE keys (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
