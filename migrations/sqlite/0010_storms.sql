-- Storm groups (issue 10): when more incidents than `storm.threshold` open on one severity within
-- `storm.window`, the rest join a storm: an incident row of kind 'storm' that pages once for
-- all of them (one Slack card, one PagerDuty trigger, one manager mail). Members keep their own
-- rows; `storm_id` points at the storm they belong to.
ALTER TABLE incidents ADD COLUMN kind TEXT NOT NULL DEFAULT 'issue';
ALTER TABLE incidents ADD COLUMN storm_id INTEGER REFERENCES incidents(id);
CREATE INDEX incidents_storm_members ON incidents(storm_id) WHERE storm_id IS NOT NULL;
-- How many incidents of a severity opened within the window: an index range, not a scan.
CREATE INDEX incidents_severity_opened ON incidents(severity, opened_at);
-- How a member joined its storm: 'at_open' (its own notifications were dropped: it gets no
-- follow-ups of its own) or 'later' (it had its own message before the storm formed).
ALTER TABLE incidents ADD COLUMN storm_join TEXT;
-- The open storms, read by every intake batch: a few rows, found without a scan.
CREATE INDEX incidents_open_storms ON incidents(severity) WHERE kind = 'storm' AND state <> 'resolved';
