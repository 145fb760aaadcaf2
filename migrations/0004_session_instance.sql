-- Which gateway instance relays a session, so an instance that restarts after a crash can
-- close the sessions it left open (and only those, when instances share one store).
ALTER TABLE sessions ADD COLUMN instance TEXT NOT NULL DEFAULT '';
