-- Rows may now come from plain SQL: a status outside the contract's five is refused
-- by the database with a clear error, instead of a row that no reader can decode.
ALTER TABLE elkservice
    ADD CONSTRAINT elkservice_status_known
        CHECK (status IN ('normal', 'degraded', 'down', 'starting', 'unknown')),
    ADD CONSTRAINT elkservice_name_valid
        CHECK (name REGEXP '^[A-Za-z0-9._-]{1,63}$');
