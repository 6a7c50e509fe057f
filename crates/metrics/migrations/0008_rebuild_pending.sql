-- A rebuild that has replayed the stream but not yet folded the items
-- (src/replay.rs): a row here until that step commits, so that a service
-- started after an interrupted rebuild finishes it before consuming.
CREATE TABLE rebuild_pending (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton)
);
