-- What each channel handed back, per incident episode *and channel* (src/store/deliveries.rs).
-- These lived in single columns on `incidents`, which two Slack channels in one policy had to
-- share (the second one updated the first one's card), and which a reopen cleared under a late
-- delivery of the previous episode (its PagerDuty incident then never resolved).
CREATE TABLE remote_refs (
    incident_id         INTEGER NOT NULL REFERENCES incidents(id),
    episode             INTEGER NOT NULL,
    channel             TEXT    NOT NULL,        -- the channel's name in routing.yaml
    slack_channel       TEXT,                    -- Slack channel id of the incident card
    slack_ts            TEXT,                    -- and its message ts (bot mode)
    pagerduty_triggered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id, episode, channel)
) WITHOUT ROWID;

-- Carry over the current episode's references: to the delivery whose stored answer holds the
-- card's ts (Slack), and to the channels whose trigger was accepted (PagerDuty's answer names
-- the dedup key).
INSERT INTO remote_refs (incident_id, episode, channel, slack_channel, slack_ts)
SELECT i.id, i.episode, d.channel, i.slack_channel, i.slack_ts
FROM incidents i
JOIN deliveries d ON d.id = (
    SELECT id FROM deliveries
    WHERE incident_id = i.id AND episode = i.episode AND status = 'delivered'
      AND instr(response, i.slack_ts) > 0
    ORDER BY id LIMIT 1)
WHERE i.slack_ts IS NOT NULL;

INSERT INTO remote_refs (incident_id, episode, channel, pagerduty_triggered)
SELECT DISTINCT i.id, i.episode, d.channel, 1
FROM incidents i
JOIN deliveries d ON d.incident_id = i.id AND d.episode = i.episode
WHERE i.pagerduty_triggered = 1 AND d.status = 'delivered'
  AND d.kind IN ('opened', 'severity_raised', 'escalation')
  AND instr(d.response, '"dedup_key"') > 0
ON CONFLICT (incident_id, episode, channel) DO UPDATE SET pagerduty_triggered = 1;

ALTER TABLE incidents DROP COLUMN slack_channel;
ALTER TABLE incidents DROP COLUMN slack_ts;
ALTER TABLE incidents DROP COLUMN pagerduty_triggered;
