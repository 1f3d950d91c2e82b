-- The outbox's claim and next-due queries (src/store/deliveries.rs) as index lookups whose cost
-- does not grow with the backlog (issue 10, target 3). Both are partial: only rows still waiting
-- are in them, so delivered history costs nothing, and the query's own `status IN (...)` term
-- must stay word for word the same as here for SQLite to use them.
--
-- Channel first: a channel with nothing due reads nothing of other channels' rows, and a busy
-- one reads its due rows already in claim order (`next_attempt_at`, then rowid), so the
-- `LIMIT` stops early and no temporary B-tree sorts the backlog.
CREATE INDEX deliveries_live_due ON deliveries(channel, next_attempt_at)
    WHERE status IN ('pending', 'failed', 'sending');
-- "Is an earlier row of this incident still waiting on this channel?" (per-incident order).
CREATE INDEX deliveries_live_turn ON deliveries(incident_id, channel)
    WHERE status IN ('pending', 'failed', 'sending');
