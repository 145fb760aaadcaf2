-- Requests to end a live session held by another instance: the holder ends it and says so.
CREATE TABLE session_ends (
    session_id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    done_at BIGINT,
    ended BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX session_ends_pending ON session_ends (instance) WHERE done_at IS NULL;
