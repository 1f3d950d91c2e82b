-- Retry bookkeeping for digest claims (src/store/digests.rs). A row's state:
--   in flight        sent_at NULL, error NULL           (reclaimable once claimed_at is older than the lease)
--   failed, retrying sent_at NULL, error set, retry_at set (reclaimable from retry_at)
--   failed, gave up  sent_at NULL, error set, retry_at NULL
--   settled          sent_at set (sent, or deliberately not sent: see response)
ALTER TABLE digests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN retry_at INTEGER;
-- What the mail server answered, or why nothing was sent (empty period, send_when_empty: false).
ALTER TABLE digests ADD COLUMN response TEXT;
