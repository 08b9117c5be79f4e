-- What the notifier follows per webhook and service (the open problem and
-- whether it was notified), and how far into the change feed it has planned.
CREATE TABLE IF NOT EXISTS elkservice_notifier_track (
    webhook      VARCHAR(16) NOT NULL,
    service_name VARCHAR(63) NOT NULL,
    track        TEXT        NOT NULL,
    PRIMARY KEY (webhook, service_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
