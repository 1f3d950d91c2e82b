-- The SQLite migration 0016_lifecycle.sql, in PostgreSQL's words (see there for each column).
ALTER TABLE incidents ADD COLUMN ack_event_count BIGINT;
ALTER TABLE incidents ADD COLUMN episode_event_count BIGINT;
ALTER TABLE incidents ADD COLUMN confirm_by BIGINT;
ALTER TABLE incidents ADD COLUMN delivery_degraded_at BIGINT;
ALTER TABLE incidents ADD COLUMN seer_root_cause TEXT;
ALTER TABLE incidents ADD COLUMN seer_pr_url TEXT;
ALTER TABLE incidents ADD COLUMN sentry_echo_episode BIGINT;
ALTER TABLE incidents ADD COLUMN escalation_reason TEXT;
CREATE INDEX incidents_confirm_by ON incidents(confirm_by) WHERE confirm_by IS NOT NULL;
