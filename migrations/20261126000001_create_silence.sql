-- Silences: while one is active (until `until`), the services whose names
-- match `match_glob` send no notifications.
CREATE TABLE IF NOT EXISTS elkservice_silence (
    id          BIGINT        NOT NULL AUTO_INCREMENT,
    match_glob  VARCHAR(63)   NOT NULL,
    until       DATETIME(6)   NOT NULL,
    comment     VARCHAR(1024) NOT NULL DEFAULT '',
    created_at  DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY by_until (until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
