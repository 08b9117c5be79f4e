-- The feed's counters: `seq`, the last Seq given (its row lock orders the
-- commits), and `pruned`, the last Seq that retention has deleted.
CREATE TABLE IF NOT EXISTS elkservice_feed (
    name  VARCHAR(16) NOT NULL,
    value BIGINT      NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
