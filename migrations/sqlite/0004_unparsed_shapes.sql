-- Sentry payloads we kept but could not read (src/intake/unparsed.rs): their envelope was
-- Sentry's, their `data` was not what the resource carries. One row per resource and shape, so
-- each new shape is announced once, also across restarts; the events themselves are in `events`
-- with status `unparsed`.
CREATE TABLE unparsed_shapes (
    resource       TEXT    NOT NULL,             -- event_alert | metric_alert | issue | error | legacy | ...
    shape          TEXT    NOT NULL,             -- sorted top-level keys of `data` (legacy: of the body)
    reason         TEXT    NOT NULL,             -- what the first one lacked
    first_event_id INTEGER NOT NULL,             -- events.id
    last_event_id  INTEGER NOT NULL,
    seen           INTEGER NOT NULL DEFAULT 1,
    first_seen_at  INTEGER NOT NULL,             -- also when it was announced
    last_seen_at   INTEGER NOT NULL,
    PRIMARY KEY (resource, shape)
) WITHOUT ROWID;
CREATE INDEX unparsed_shapes_last_seen ON unparsed_shapes(last_seen_at);
