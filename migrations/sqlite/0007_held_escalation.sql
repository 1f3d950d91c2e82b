-- The escalation deadline an incident already paging had when a silence held it: restored when
-- the silence ends (it is not paged again, and its window does not restart). NULL when the
-- incident was held from its first alert (then the spec's rule: notified at the end).
ALTER TABLE incidents ADD COLUMN held_escalation_at INTEGER;
