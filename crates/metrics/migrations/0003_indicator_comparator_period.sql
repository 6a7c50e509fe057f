-- The comparator's own date (a workforce row compares the organisation with
-- itself at an earlier date). Indicators folded before this column existed
-- have none; their comparator may be that date, which the queries read as
-- the same organisation at that date.
ALTER TABLE indicators ADD COLUMN comparator_period TEXT NOT NULL DEFAULT '';
