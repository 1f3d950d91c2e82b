-- Two reads that ran on every intake batch or every second scanned `incidents` (issue 10,
-- target 3; found with 100,000 open incidents waiting for Slack):
--
-- The open storms: ordered by id, so SQLite preferred a full scan in rowid order to the partial
-- index on severity. Indexed on id, the partial index holds just the open storms, in order.
DROP INDEX incidents_open_storms;
CREATE INDEX incidents_open_storms ON incidents(id) WHERE kind = 'storm' AND state <> 'resolved';
-- The Slack cards whose live event count is behind: only incidents whose card was posted
-- (`notified_count` > 0 is set with the card's `slack_ts`, see store::deliveries), still open,
-- with newer events. A backlog of incidents never told (Slack down) is not in it.
CREATE INDEX incidents_count_due ON incidents(id)
    WHERE notified_count > 0 AND event_count > notified_count AND state IN ('triggered', 'acknowledged');
