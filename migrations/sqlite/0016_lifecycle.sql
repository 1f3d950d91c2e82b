-- Issue 12: what an incident needs for Sentry's lifecycle, acknowledgement timeouts and the
-- guaranteed page.
-- ack_event_count: events counted when the acknowledgement was made (the rate before it and
--   since are compared for `reack_on_rate`).
-- episode_event_count: events counted before the current episode opened (its own rate).
-- confirm_by: the episode's `confirm_within` deadline, cleared once a notification was
--   confirmed delivered or the fail-over fired.
-- delivery_degraded_at: when that fail-over fired (shown on the page, counted in a metric).
-- seer_root_cause, seer_pr_url: what Sentry's Seer (Autofix) found for the issue.
-- sentry_echo_episode: the episode whose resolution we sent to Sentry: the `issue.resolved`
--   webhook Sentry sends back for it is our own echo.
-- escalation_reason: why the next escalation comes before its window (Sentry marked the issue
--   escalating): said in the escalation's message.
ALTER TABLE incidents ADD COLUMN ack_event_count INTEGER;
ALTER TABLE incidents ADD COLUMN episode_event_count INTEGER;
ALTER TABLE incidents ADD COLUMN confirm_by INTEGER;
ALTER TABLE incidents ADD COLUMN delivery_degraded_at INTEGER;
ALTER TABLE incidents ADD COLUMN seer_root_cause TEXT;
ALTER TABLE incidents ADD COLUMN seer_pr_url TEXT;
ALTER TABLE incidents ADD COLUMN sentry_echo_episode INTEGER;
ALTER TABLE incidents ADD COLUMN escalation_reason TEXT;
CREATE INDEX incidents_confirm_by ON incidents(confirm_by) WHERE confirm_by IS NOT NULL;
