-- The change feed in pages (see crates/core/src/store/feed.rs): one row per
-- run of consecutive entries that one transaction recorded, instead of one
-- row per entry. `at` is the newest entry's, for retention.
CREATE TABLE IF NOT EXISTS elkservice_change_page (
    last_seq  BIGINT      NOT NULL,
    first_seq BIGINT      NOT NULL,
    at        DATETIME(6) NOT NULL,
    entries   MEDIUMTEXT  NOT NULL,
    PRIMARY KEY (last_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- The entries recorded so far, each a page of its own, in the page's form:
-- [Kind, Id, Name, At in microseconds since the epoch, FromStatus, row].
INSERT INTO elkservice_change_page (last_seq, first_seq, at, entries)
SELECT seq, seq, at,
       JSON_ARRAY(JSON_ARRAY(kind, service_id, name,
                             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', at),
                             from_status, JSON_EXTRACT(service, '$')))
FROM elkservice_change;
DROP TABLE elkservice_change;
