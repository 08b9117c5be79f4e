-- One row per status transition of a service, whoever caused it (a watcher's
-- observation applied by the writer, or a client through the API).
CREATE TABLE IF NOT EXISTS elkservice_event (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    service_id  BIGINT       NOT NULL,
    from_status VARCHAR(16)  NULL,
    status      VARCHAR(16)  NOT NULL,
    running     BOOLEAN      NOT NULL,
    detail      VARCHAR(1024) NULL,
    observed_at DATETIME(6)  NOT NULL,
    source      VARCHAR(255) NOT NULL,
    PRIMARY KEY (id),
    KEY ix_elkservice_event_service (service_id, id),
    CONSTRAINT fk_elkservice_event_service FOREIGN KEY (service_id)
        REFERENCES elkservice (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
