-- Checkpoints of the dated tallies (`crate::dated`), so that an as-of
-- answer reads one checkpoint and the deltas between it and the day, not
-- every delta up to the day: the sum of the deltas dated before `day`, of
-- the summary tallies only (the details, OPEN and CLOSED, are read from
-- the deltas for inspections with no date). Kept by the consumers with
-- the deltas; a rebuild empties and refills them.
CREATE TABLE dated_checkpoints (
    day DATE NOT NULL,
    organisation_id TEXT NOT NULL,
    tally SMALLINT NOT NULL,
    inspection_id TEXT NOT NULL,
    other TEXT NOT NULL,
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    d1 DATE NULL,
    d2 DATE NULL,
    d3 DATE NULL,
    n BIGINT NOT NULL
);
CREATE UNIQUE INDEX dated_checkpoints_key ON dated_checkpoints
    (day, organisation_id, tally, inspection_id, other, a, b, d1, d2, d3) NULLS NOT DISTINCT;

-- The days that have a checkpoint (the first of each year up to the
-- current one, added under the upkeep's exclusive lock). A day listed
-- here has every nonzero sum in `dated_checkpoints`.
CREATE TABLE dated_checkpoint_days (
    day DATE PRIMARY KEY
);
