-- The live sessions, found without scanning the ended ones (the console's first page).
CREATE INDEX sessions_live ON sessions (started_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_role ON sessions (resource_role, started_at);
