UPDATE elkservice SET settled_status = status WHERE status NOT IN ('unknown', 'starting');
