-- The SQLite migration 0017_pipeline_watch.sql, in PostgreSQL's words.
CREATE TABLE watch_state (
    name  TEXT   PRIMARY KEY,
    at    BIGINT NOT NULL,
    value BIGINT
);
CREATE TABLE interval_starts (
    interval   TEXT   NOT NULL,
    start_at   BIGINT NOT NULL,
    handled_at BIGINT NOT NULL,
    incidents  BIGINT NOT NULL,
    PRIMARY KEY (interval, start_at)
);
