-- The seed's table (Id, Name, Status, Running, FailedCount) with sane types, plus
-- what the writer needs to apply observations in order. Name is compared byte-wise
-- (utf8mb4_bin) because container names are case-sensitive.
-- observed_ns keeps the last applied observation at nanosecond precision: DATETIME
-- stops at microseconds, and the writer's ordering rule compares full RFC 3339 times.
CREATE TABLE IF NOT EXISTS elkservice (
    id                BIGINT       NOT NULL AUTO_INCREMENT,
    name              VARCHAR(63)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    status            VARCHAR(16)  NOT NULL DEFAULT 'unknown',
    running           BOOLEAN      NOT NULL DEFAULT FALSE,
    failed_count      INT UNSIGNED NOT NULL DEFAULT 0,
    detail            VARCHAR(1024) NULL,
    observed_ns       BIGINT       NULL,
    status_changed_at DATETIME(6)  NULL,
    last_checked_at   DATETIME(6)  NULL,
    created_at        DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at        DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY uq_elkservice_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
