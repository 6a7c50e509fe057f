-- Summaries of the tallies that live answers read (src/tally.rs), kept
-- beside the detailed tallies of 0004 in the same transactions. They drop
-- the day an item was opened (needed only when its inspection has no date,
-- then the detail is read for that inspection alone), so one organisation
-- reads a row per inspection and closing day, not per opening day too; and
-- per-organisation totals let a peer comparison read a row per
-- organisation. Filled here from the items already folded.

-- Opened items per organisation: all, open (not closed, 4, nor
-- superseded, 5) and closed.
CREATE TABLE tally_totals (
    organisation_id TEXT PRIMARY KEY,
    opened BIGINT NOT NULL,
    open BIGINT NOT NULL,
    closed BIGINT NOT NULL
);

-- Open items per inspection.
CREATE TABLE tally_open_inspections (
    organisation_id TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, inspection_id)
);

-- Closed items by what dates their closure: when verified, the
-- verification's effective date; else the closing inspection's date, else
-- the day the closure was recorded (closing_day).
CREATE TABLE tally_closing (
    organisation_id TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    closed_by_inspection_id TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    closing_day DATE NULL,
    n BIGINT NOT NULL,
    UNIQUE NULLS NOT DISTINCT (organisation_id, inspection_id, closed_by_inspection_id,
        verified, closing_day)
);

-- The detail of an undated inspection, read across organisations.
CREATE INDEX tally_open_by_inspection ON tally_open (inspection_id);
CREATE INDEX tally_closed_by_inspection ON tally_closed (inspection_id);

SET LOCAL TIME ZONE 'UTC';

INSERT INTO tally_totals
SELECT organisation_id, count(*), count(*) FILTER (WHERE status NOT IN (4, 5)),
    count(*) FILTER (WHERE status = 4)
FROM items WHERE opened GROUP BY 1;

INSERT INTO tally_open_inspections
SELECT organisation_id, inspection_id, count(*) FROM items
WHERE opened AND status NOT IN (4, 5) GROUP BY 1, 2;

INSERT INTO tally_closing
SELECT organisation_id, inspection_id, closed_by_inspection_id, verified_on IS NOT NULL,
    COALESCE(verified_on, closed_at::date), count(*)
FROM items WHERE opened AND status = 4 GROUP BY 1, 2, 3, 4, 5;
