-- Each watcher's latest observation of each service: its vote. The writer derives
-- the row from a service's votes by the quorum rule (writer.quorum), so watchers
-- that disagree never make the row follow whichever spoke last. `fresh` is the
-- writer's last judgement of the vote's age (writer.stale_after_secs); a vote older
-- than writer.forget_watcher_secs is deleted, and so leaves the quorum's base.
CREATE TABLE IF NOT EXISTS elkservice_vote (
    service_id  BIGINT        NOT NULL,
    watcher     VARCHAR(255)  NOT NULL,
    status      VARCHAR(16)   NOT NULL,
    running     BOOLEAN       NOT NULL,
    planned     BOOLEAN       NOT NULL DEFAULT FALSE,
    detail      VARCHAR(1024) NULL,
    observed_ns BIGINT        NOT NULL,
    fresh       BOOLEAN       NOT NULL DEFAULT TRUE,
    PRIMARY KEY (service_id, watcher),
    KEY by_watcher (watcher, observed_ns),
    KEY by_age (fresh, observed_ns),
    CONSTRAINT fk_vote_service FOREIGN KEY (service_id) REFERENCES elkservice (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Rows fed before votes existed: their last watcher's observation is its vote.
INSERT IGNORE INTO elkservice_vote (service_id, watcher, status, running, detail, observed_ns)
SELECT id, watcher, status, running, detail, observed_ns FROM elkservice
WHERE watcher IS NOT NULL AND observed_ns IS NOT NULL;
