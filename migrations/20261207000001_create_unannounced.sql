-- Changes to `elkservice` that no elkservice program announced (plain SQL, another
-- program, a restore): the table's triggers (crates/core/src/store/unannounced.rs)
-- note the Id, its name and what it was before; the api turns them into feed entries with
-- "Source":"database" and deletes them.
CREATE TABLE IF NOT EXISTS elkservice_unannounced (
    seq         BIGINT      NOT NULL AUTO_INCREMENT,
    service_id  BIGINT      NOT NULL,
    existed     BOOLEAN     NOT NULL,
    from_status VARCHAR(16) NULL,
    name        VARCHAR(63) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (seq),
    KEY by_service (service_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
