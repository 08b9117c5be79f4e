-- The writers' dead man's switch: a selfcheck published to the broker is
-- recorded here when a writer applies it; the writer that sent it pings
-- [selfcheck] ping_url only once it sees its nonce here.
CREATE TABLE IF NOT EXISTS elkservice_selfcheck (
    nonce BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    applied_at DATETIME(6) NOT NULL
) ENGINE = InnoDB;
