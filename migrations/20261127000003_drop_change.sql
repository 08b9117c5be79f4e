-- Its entries are in elkservice_change_page now.
DROP TABLE IF EXISTS elkservice_change;
