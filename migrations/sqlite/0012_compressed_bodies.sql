-- Raw bodies stored compressed (issue 10, target 6): `body_encoding` says how `events.body` is
-- kept. 0 = the bytes as received: every row stored before this migration, read as they are and
-- not rewritten (adding a column with a constant default changes no stored row). 1 = a zstd
-- frame compressed with a dictionary trained on real payloads; the frame names the dictionary
-- by id (src/store/body.rs). Retention still clears `body` (and `details`) as before.
ALTER TABLE events ADD COLUMN body_encoding INTEGER NOT NULL DEFAULT 0;
