-- When a flapping service's track has something to send (its stable message).
ALTER TABLE elkservice_notifier_track
    ADD COLUMN IF NOT EXISTS wake_at DATETIME(6) NULL,
    ADD KEY IF NOT EXISTS by_wake (wake_at);
