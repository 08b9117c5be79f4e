-- Names deleted through the API, with when: an observation made before the
-- deletion never re-creates the row (the writer registers a name only for an
-- observation newer than its tombstone).
CREATE TABLE IF NOT EXISTS elkservice_tombstone (
    name       VARCHAR(63) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    deleted_ns BIGINT      NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
