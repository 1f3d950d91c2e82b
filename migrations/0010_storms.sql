-- Storm groups (issue 10): when more incidents than `storm.threshold` open on one severity within
-- `storm.window`, the rest join a storm: an incident row of kind 'storm' that pages once for
-- all of them (one Slack card, one PagerDuty trigger, one manager mail). Members keep their own
-- rows; `storm_id` points at the storm they belong to.
ALTER TABLE incidents ADD COLUMN kind TEXT NOT NULL DEFAULT 'issue';
ALTER TABLE incidents ADD COLUMN storm_id INTEGER REFERENCES incidents(id);
CREATE INDEX incidents_storm_members ON incidents(storm_id) WHERE storm_id IS NOT NULL;
-- How many incidents of a severity opened within the window: an index range, not a scan.
CREATE INDEX incidents_severity_opened ON incidents(severity, opened_at);
