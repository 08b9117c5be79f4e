INSERT IGNORE INTO elkservice_feed (name, value) VALUES ('seq', 0), ('pruned', 0);
