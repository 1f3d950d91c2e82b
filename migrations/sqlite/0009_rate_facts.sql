-- What a rate window needs from each occurrence, kept at intake so a restart rebuilds the
-- windows from these columns instead of re-parsing every body received within the window
-- (issue 10, target 4). `rate_keys` is JSON `[[rule index, group key], ...]` (NULL: counted
-- toward no rate rule); the indexes refer to the rules whose fingerprint is `rate_fp`. Rows
-- stored before this migration, or under other rules (a reload), have another `rate_fp`: the
-- writer reads those few (at most one window's worth) from their bodies, as before.
ALTER TABLE events ADD COLUMN rate_fp INTEGER;
ALTER TABLE events ADD COLUMN rate_keys TEXT;
-- Covering (`occurrence` too: SQLite counts a column the query names), in replay order: the
-- rebuild reads this index alone, never a row's page and its body.
CREATE INDEX events_rate_facts ON events(received_at, id, rate_fp, rate_keys, occurrence)
    WHERE occurrence = 1;
