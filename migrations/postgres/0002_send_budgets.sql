-- Rate limits shared by the replicas of one database (store::budgets): per destination key (a
-- Slack channel, a PagerDuty routing key), the time the next send conforms (GCRA's theoretical
-- arrival time) and a pause a 429's Retry-After asked for. SQLite needs none: one process serves
-- it and keeps these in memory.
CREATE TABLE send_budgets (
    key             TEXT   PRIMARY KEY,
    tat_ms          BIGINT NOT NULL,
    paused_until_ms BIGINT
);
