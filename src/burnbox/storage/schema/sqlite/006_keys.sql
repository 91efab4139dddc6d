-- Keys the deployment keeps for itself (handles.py): made by the first process that needs
-- one, read by every later one.
CREATE TABLE keys (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
