-- The entries recorded one row each, each now a page of its own, in the
-- page's form: [Kind, Id, Name, At in microseconds since the epoch,
-- FromStatus, the row]. (A million entries took about 6 s.)
INSERT INTO elkservice_change_page (last_seq, first_seq, at, entries)
SELECT seq, seq, at,
       JSON_ARRAY(JSON_ARRAY(kind, service_id, name,
                             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', at),
                             from_status, JSON_EXTRACT(service, '$')))
FROM elkservice_change;
