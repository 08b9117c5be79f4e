-- The change feed (see crates/core/src/store/feed.rs): one row per change a
-- client would see, numbered in commit order by the counter below.
CREATE TABLE IF NOT EXISTS elkservice_change (
    seq         BIGINT      NOT NULL,
    kind        VARCHAR(16) NOT NULL,
    service_id  BIGINT      NOT NULL,
    name        VARCHAR(63) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    at          DATETIME(6) NOT NULL,
    from_status VARCHAR(16) NULL,
    service     TEXT        NULL,
    PRIMARY KEY (seq),
    KEY ix_elkservice_change_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
