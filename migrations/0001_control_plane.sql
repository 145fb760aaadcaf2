-- Control plane. Written once for SQLite and PostgreSQL: TEXT, BIGINT only.
-- Secrets (upstream passwords, MySQL verifiers) are sealed text, never plain.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 1);

CREATE TABLE access_groups (
    name TEXT PRIMARY KEY,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    email TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    role TEXT NOT NULL,
    scram TEXT,
    mysql_native TEXT,
    mysql_sha2 TEXT,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE user_groups (
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    group_name TEXT NOT NULL REFERENCES access_groups (name) ON DELETE CASCADE,
    PRIMARY KEY (user_name, group_name)
);

CREATE TABLE resources (
    name TEXT PRIMARY KEY,
    protocol TEXT NOT NULL,
    address TEXT NOT NULL,
    tls TEXT NOT NULL,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE resource_roles (
    name TEXT PRIMARY KEY,
    resource TEXT NOT NULL REFERENCES resources (name),
    database_name TEXT NOT NULL,
    upstream_user TEXT NOT NULL,
    secret TEXT,
    mode_native BIGINT NOT NULL,
    mode_web BIGINT NOT NULL,
    mode_runbooks BIGINT NOT NULL,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE resource_role_groups (
    resource_role TEXT NOT NULL REFERENCES resource_roles (name) ON DELETE CASCADE,
    group_name TEXT NOT NULL REFERENCES access_groups (name) ON DELETE CASCADE,
    PRIMARY KEY (resource_role, group_name)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT
);

CREATE TABLE admin_changes (
    id TEXT PRIMARY KEY,
    ts BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX admin_changes_ts ON admin_changes (ts);
