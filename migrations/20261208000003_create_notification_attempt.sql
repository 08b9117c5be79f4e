-- Every attempt to deliver a notification: when, what the receiver answered
-- (or why there was no answer), and how long it took. GET /notifications/{Id}
-- lists them; they go with their notification.
CREATE TABLE IF NOT EXISTS elkservice_notification_attempt (
    id              BIGINT        NOT NULL AUTO_INCREMENT,
    notification_id BIGINT        NOT NULL,
    at              DATETIME(6)   NOT NULL,
    status_code     SMALLINT      NULL,
    latency_ms      INT           NOT NULL,
    error           VARCHAR(1024) NULL,
    PRIMARY KEY (id),
    KEY by_notification (notification_id, id),
    CONSTRAINT fk_attempt_notification FOREIGN KEY (notification_id)
        REFERENCES elkservice_notification (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
