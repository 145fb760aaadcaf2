-- Guardrails (config-declared ones managed), stored whole like access request rules.
CREATE TABLE guardrails (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
