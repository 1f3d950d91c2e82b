-- What a message shows about an event (request line, top in-app frame, last breadcrumbs,
-- release, tags, metric kind and value), extracted once at intake and already scrubbed of
-- secrets (and of PII unless delivery.include_pii), as JSON of intake::details::EventDetails.
-- Deliveries read this instead of parsing `body` again. NULL for rows written before this
-- migration: the writer fills them in from `body` when it starts (intake::details::backfill);
-- a row whose body is gone (past retention) has nothing to extract and stays NULL.
ALTER TABLE events ADD COLUMN details TEXT;
-- Keeps the start-up check for rows still to fill in cheap once there are none.
CREATE INDEX events_details_missing ON events(id) WHERE details IS NULL AND body IS NOT NULL;
