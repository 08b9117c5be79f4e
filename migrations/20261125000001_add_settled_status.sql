-- The last status other than `unknown` and `starting`: a transition into `down`
-- counts as a new failure only when this was not already `down`, so a blip
-- through unknown (the watcher restarting, the engine away for a moment) is
-- not counted twice.
ALTER TABLE elkservice ADD COLUMN settled_status VARCHAR(16) NULL AFTER status;
