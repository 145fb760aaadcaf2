-- Masking rules (config-declared ones managed), stored whole like guardrails.
CREATE TABLE masking_rules (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
