-- Days-to-close histograms in the as-of checkpoints (`crate::dated`), so
-- that a peer comparison as of a day reads the histograms of the
-- organisation, its registered group and everyone instead of every
-- organisation's closings (tally 9): rows of tally 10 (organisation_id,
-- a = days to close) and 11 (the same summed over everyone,
-- organisation_id ''), the closings each checkpoint holds dated as
-- `dated_inspections` has them (as `tally_days` and `tally_days_all` are
-- to the live closings). When an inspection's date arrives or changes,
-- the upkeep finds the stored closings it dates by these indexes and
-- moves them to their new days to close.
CREATE INDEX dated_tallies_closing_by_inspection ON dated_tallies (inspection_id)
    WHERE tally = 9;
CREATE INDEX dated_tallies_closing_by_closer ON dated_tallies (other)
    WHERE tally = 9 AND other <> '';

-- Filled here from the checkpoints' closings, as `DaysToClose::add`
-- dates them: from the inspection's date to the verification's effective
-- date (a = 1: d1), else the closing inspection's date, else the day the
-- closure was recorded (d1); never before the inspection's date.
INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, a, b, d1, d2,
    d3, n)
SELECT c.day, c.organisation_id, 10, '', '',
    GREATEST(GREATEST(CASE WHEN c.a <> 0 THEN c.d1 ELSE COALESCE(b.day, c.d1) END, o.day)
        - o.day, 0),
    0, NULL, NULL, NULL, sum(c.n)::bigint
FROM dated_checkpoints c
JOIN dated_inspections o ON o.inspection_id = c.inspection_id
LEFT JOIN dated_inspections b ON c.other <> '' AND b.inspection_id = c.other
WHERE c.tally = 9 AND c.n <> 0
    AND (CASE WHEN c.a <> 0 THEN c.d1 ELSE COALESCE(b.day, c.d1) END) IS NOT NULL
GROUP BY 1, 2, 6
HAVING sum(c.n) <> 0;

INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, a, b, d1, d2,
    d3, n)
SELECT day, '', 11, '', '', a, 0, NULL, NULL, NULL, sum(n)::bigint
FROM dated_checkpoints WHERE tally = 10
GROUP BY day, a
HAVING sum(n) <> 0;
