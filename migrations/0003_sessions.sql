-- The session index: one row per session, so sessions can be listed and filtered without
-- scanning the monitoring log. Statements stay in the log (`log_file` says where to start).
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    resource_role TEXT NOT NULL,
    resource TEXT NOT NULL,
    protocol TEXT NOT NULL,
    mode TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    application_name TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    statements BIGINT NOT NULL DEFAULT 0,
    bytes_in BIGINT NOT NULL DEFAULT 0,
    bytes_out BIGINT NOT NULL DEFAULT 0,
    ended_by TEXT,
    error TEXT
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_user ON sessions (user_name, started_at);
