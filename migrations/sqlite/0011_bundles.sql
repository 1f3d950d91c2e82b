-- Bundles (issue 10, target 7): in Slack bot mode, incidents due together on one channel are
-- listed on one card that grows in place (`chat.update`) while it is recent, instead of one
-- message per incident at Slack's 1 message/s. The card is remembered here, with its members,
-- so that it can grow and so that a member's acknowledgement or resolution re-renders its line
-- and replies in the card's thread. A member's own `remote_refs` row is not written: it has no
-- card of its own, and updating the bundle with one incident's card would wipe the list.
CREATE TABLE bundles (
    id            INTEGER PRIMARY KEY,
    channel       TEXT    NOT NULL,          -- the channel's name in routing.yaml
    slack_channel TEXT    NOT NULL,          -- Slack channel id returned by chat.postMessage
    slack_ts      TEXT    NOT NULL,          -- and the card's ts
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
-- The newest card of a channel (the one that may still grow).
CREATE INDEX bundles_channel_created ON bundles(channel, created_at);

CREATE TABLE bundle_members (
    bundle_id   INTEGER NOT NULL REFERENCES bundles(id),
    position    INTEGER NOT NULL,            -- order on the card
    incident_id INTEGER NOT NULL,
    episode     INTEGER NOT NULL,
    PRIMARY KEY (bundle_id, position)
) WITHOUT ROWID;
-- "Which card lists this incident episode?" (acknowledgements of a member).
CREATE INDEX bundle_members_incident ON bundle_members(incident_id, episode);
