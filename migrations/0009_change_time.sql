-- Admin changes in the order they were made: the time in microseconds beside the seconds.
ALTER TABLE admin_changes ADD COLUMN ts_us BIGINT NOT NULL DEFAULT 0;
CREATE INDEX admin_changes_time ON admin_changes (ts_us, ts);
