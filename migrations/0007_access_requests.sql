-- Access requests: the rules (each as JSON) and the requests made under them (each as
-- JSON, with the columns the lists filter on beside it).
CREATE TABLE access_request_rules (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE access_requests (
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    resource_role TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_requests_by_status ON access_requests (status, expires_at);
CREATE INDEX access_requests_by_requester ON access_requests (requester, created_at);
