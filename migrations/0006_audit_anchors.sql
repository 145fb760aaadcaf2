-- The monitoring log's chain head as of each instance's last checkpoint, kept outside the
-- log directory: a log cut short or rewritten is found against it.
CREATE TABLE audit_anchors (
    instance TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
