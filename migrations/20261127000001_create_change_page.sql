-- The change feed in pages (see crates/core/src/store/feed.rs): one row per
-- run of up to 256 consecutive entries that one transaction recorded, instead
-- of one row per entry. `at` is the newest entry's, for retention.
CREATE TABLE IF NOT EXISTS elkservice_change_page (
    last_seq  BIGINT      NOT NULL,
    first_seq BIGINT      NOT NULL,
    at        DATETIME(6) NOT NULL,
    entries   MEDIUMTEXT  NOT NULL,
    PRIMARY KEY (last_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
