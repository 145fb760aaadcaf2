-- Access review: the last time each user used each resource role.
CREATE INDEX sessions_user_role ON sessions (user_name, resource_role, started_at);
