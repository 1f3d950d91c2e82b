-- Silences: alerts matching `matchers` between starts_at and ends_at are stored and counted but
-- notify nobody and do not escalate. Kept after they end (history); never deleted.
CREATE TABLE silences (
    id           INTEGER PRIMARY KEY,
    matchers     TEXT    NOT NULL,               -- JSON of domain::Matchers
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    author       TEXT    NOT NULL,
    comment      TEXT    NOT NULL DEFAULT '',
    let_through  TEXT    NOT NULL DEFAULT '[]',  -- JSON array of severities that page anyway
    created_at   INTEGER NOT NULL,
    expired_at   INTEGER,                        -- set when expired by hand before ends_at
    -- Set in the transaction that notified the incidents it held, once it ended: the proof that
    -- this happens once, whatever restarts in between.
    released_at  INTEGER
);
CREATE INDEX silences_unreleased ON silences(ends_at) WHERE released_at IS NULL;

-- The silence holding this incident's notifications and escalation; NULL when none.
ALTER TABLE incidents ADD COLUMN silenced_by INTEGER REFERENCES silences(id);
CREATE INDEX incidents_silenced_by ON incidents(silenced_by) WHERE silenced_by IS NOT NULL;
