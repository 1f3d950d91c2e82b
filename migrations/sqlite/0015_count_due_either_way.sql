-- A storm's Slack card counts its members in `event_count`, which goes down when a member leaves
-- (raised above the storm, or reopened). The cards due a count update are those whose shown
-- count differs from the stored one, either way; for an issue the count only grows, so nothing
-- changes for it.
DROP INDEX incidents_count_due;
CREATE INDEX incidents_count_due ON incidents(id)
    WHERE notified_count > 0 AND event_count <> notified_count AND state IN ('triggered', 'acknowledged');
