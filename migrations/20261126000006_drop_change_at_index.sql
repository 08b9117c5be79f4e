-- Retention prunes the feed from its oldest entry, in Seq order (the primary
-- key), so no index on `at` is needed; every writing transaction paid for one.
ALTER TABLE elkservice_change DROP INDEX ix_elkservice_change_at;
