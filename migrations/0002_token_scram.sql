-- A SCRAM verifier per token, sharing its user's salt, so a token can be used as the
-- password by PostgreSQL clients that only speak SCRAM.
ALTER TABLE tokens ADD COLUMN scram TEXT;
