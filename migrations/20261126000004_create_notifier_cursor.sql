CREATE TABLE IF NOT EXISTS elkservice_notifier_cursor (
    name VARCHAR(32) NOT NULL,
    seq  BIGINT      NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
