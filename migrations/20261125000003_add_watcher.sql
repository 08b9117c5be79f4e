-- The watcher whose observation was applied last: a row fed by a watcher that
-- has gone silent becomes `unknown` (writer.stale_after_secs). NULL for rows
-- that only the API has written.
ALTER TABLE elkservice ADD COLUMN watcher VARCHAR(255) NULL AFTER observed_ns;
