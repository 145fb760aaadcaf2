-- The instances of a store and when each last said it was alive: a peer ends the sessions
-- of one silent for longer than `store.instance_timeout`.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
