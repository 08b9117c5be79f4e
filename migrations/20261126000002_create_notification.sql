-- The notifier's outbox: every notification it decided to send, to which
-- webhook, with the key a receiver deduplicates on, and how its delivery went.
CREATE TABLE IF NOT EXISTS elkservice_notification (
    id              BIGINT        NOT NULL AUTO_INCREMENT,
    webhook         VARCHAR(16)   NOT NULL,
    idempotency_key VARCHAR(64)   NOT NULL,
    service_name    VARCHAR(63)   NOT NULL,
    kind            VARCHAR(16)   NOT NULL,
    problem_key     VARCHAR(64)   NULL,
    body            MEDIUMTEXT    NOT NULL,
    state           VARCHAR(16)   NOT NULL,
    due_at          DATETIME(6)   NOT NULL,
    attempts        INT           NOT NULL DEFAULT 0,
    last_error      VARCHAR(1024) NULL,
    created_at      DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY by_key (webhook, idempotency_key),
    KEY by_state (state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
