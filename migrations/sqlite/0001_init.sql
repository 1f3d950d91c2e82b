-- paiid-alerts schema. Append-only: later changes go in new files.
-- Times are integer milliseconds since the Unix epoch (UTC).

-- Every webhook we answered 2xx to, with its raw body for re-examination.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    -- Sentry retries resend the same body with a new Request-ID: this key makes them duplicates.
    dedup_key     TEXT    NOT NULL UNIQUE,
    request_id    TEXT,
    source        TEXT    NOT NULL,              -- sentry | sentry-legacy | test
    resource      TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    status        TEXT    NOT NULL,              -- processed | ignored
    incident_id   INTEGER REFERENCES incidents(id),
    severity      TEXT,
    rule          TEXT,
    project       TEXT,
    environment   TEXT,
    level         TEXT,
    occurrence    INTEGER NOT NULL DEFAULT 0,    -- counted in rate windows
    body          BLOB                           -- NULL once past the retention period
);
CREATE INDEX events_received_at ON events(received_at);
CREATE INDEX events_incident ON events(incident_id);

-- One row per Sentry issue or metric alert rule; a reopen starts a new episode of the same row.
CREATE TABLE incidents (
    id                  INTEGER PRIMARY KEY,
    incident_key        TEXT    NOT NULL UNIQUE,
    episode             INTEGER NOT NULL DEFAULT 1,
    severity            TEXT    NOT NULL,
    state               TEXT    NOT NULL,        -- triggered | acknowledged | resolved | muted
    title               TEXT    NOT NULL,
    project             TEXT,
    environment         TEXT,
    level               TEXT,
    culprit             TEXT,
    rule                TEXT,                    -- our routing rule
    sentry_rule         TEXT,                    -- Sentry's alert rule name
    sentry_issue_id     TEXT,
    sentry_url          TEXT,
    release             TEXT,
    metric_value        REAL,                    -- worst value seen (lowest apdex, highest duration)
    event_count         INTEGER NOT NULL DEFAULT 0,
    first_seen          INTEGER NOT NULL,
    last_seen           INTEGER NOT NULL,
    opened_at           INTEGER NOT NULL,        -- start of the current episode
    last_event_id       INTEGER,
    assignee            TEXT,
    acknowledged_at     INTEGER,
    acknowledged_by     TEXT,
    acknowledged_via    TEXT,
    resolved_at         INTEGER,
    resolved_by         TEXT,
    resolved_via        TEXT,
    root_cause          TEXT,
    -- Escalation policy frozen when the episode opened (JSON of config::Policy).
    policy              TEXT    NOT NULL DEFAULT '{}',
    next_escalation_at  INTEGER,
    escalation_step     INTEGER NOT NULL DEFAULT 0,
    escalation_version  INTEGER NOT NULL DEFAULT 0,
    -- Written by the delivery worker only.
    slack_channel       TEXT,
    slack_ts            TEXT,
    pagerduty_triggered INTEGER NOT NULL DEFAULT 0,
    pagerduty_incident_id TEXT,
    notified_count      INTEGER NOT NULL DEFAULT 0,
    count_updated_at    INTEGER,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX incidents_next_escalation ON incidents(next_escalation_at) WHERE next_escalation_at IS NOT NULL;
CREATE INDEX incidents_state_severity ON incidents(state, severity);

CREATE TABLE timeline (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,                -- opened | severity_raised | acknowledged | ...
    actor       TEXT,
    via         TEXT,
    detail      TEXT
);
CREATE INDEX timeline_incident ON timeline(incident_id, at);

-- The outbox: a notification exists here before anyone tries to send it.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    incident_id     INTEGER REFERENCES incidents(id),
    episode         INTEGER NOT NULL DEFAULT 1,
    channel         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,            -- notify::NotificationKind
    detail          TEXT,                        -- JSON: extra context (escalation step, test note)
    status          TEXT    NOT NULL,            -- pending | sending | delivered | failed | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_status_code INTEGER,
    last_error      TEXT,
    response        TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_incident ON deliveries(incident_id);

CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
    attempt      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    status_code  INTEGER,
    outcome      TEXT    NOT NULL,               -- delivered | retry | permanent | skipped
    response     TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id);

-- Each escalation step of each episode fires once: the unique key is the proof.
CREATE TABLE escalations (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    episode     INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    fired_at    INTEGER NOT NULL,
    lateness_ms INTEGER NOT NULL,
    UNIQUE (incident_id, episode, step)
);

-- Digest periods are claimed before sending so that no period is sent twice.
CREATE TABLE digests (
    kind         TEXT    NOT NULL,               -- daily | weekly
    period_start INTEGER NOT NULL,
    period_end   INTEGER NOT NULL,
    recipient    TEXT    NOT NULL,
    claimed_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    incidents    INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    PRIMARY KEY (kind, period_end, recipient)
);

-- PagerDuty webhook deliveries already handled (X-Webhook-Id).
CREATE TABLE inbound_webhooks (
    source      TEXT    NOT NULL,
    webhook_id  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source, webhook_id)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
