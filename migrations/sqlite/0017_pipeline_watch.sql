-- Issue 12: the watched pipeline and trading hours.
-- watch_state: the last canary (`last_canary`, value: its latency in ms; written by the intake
--   writer in the batch that received it) and when watching began (`watch_started`). The last
--   Sentry webhook is read from `events`.
-- interval_starts: each start of a time interval whose `renotify_at_start` was carried out, so
--   that it happens once across restarts and replicas.
CREATE TABLE watch_state (
    name  TEXT    PRIMARY KEY,
    at    INTEGER NOT NULL,
    value INTEGER
);
CREATE TABLE interval_starts (
    interval   TEXT    NOT NULL,
    start_at   INTEGER NOT NULL,
    handled_at INTEGER NOT NULL,
    incidents  INTEGER NOT NULL,
    PRIMARY KEY (interval, start_at)
);
