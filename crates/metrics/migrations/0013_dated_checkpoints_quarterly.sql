-- As-of checkpoints every quarter rather than every year (`crate::dated`,
-- CHECKPOINT_MONTHS = 3): an answer sums at most about 45 days of
-- everyone's deltas (half a year, or this year's up to the day, before),
-- which was most of an as-of peer comparison's time (~54,000 delta rows
-- for a day half a year from a checkpoint on the as_of bench's history).
-- The quarters missing between the first checkpoint and the last are
-- added here as `seal` adds one: the checkpoint before it with the deltas
-- between, and the closings between dated as `dated_inspections` has them
-- (`DaysToClose::add`, as migration 0011); those after the last are added
-- by the first batch that finds them missing.
CREATE TEMPORARY TABLE dated_quarters ON COMMIT DROP AS
SELECT q.day::date AS day,
    (SELECT max(c.day) FROM dated_checkpoint_days c WHERE c.day < q.day::date) AS base
FROM generate_series(
    (SELECT min(day) FROM dated_checkpoint_days)::timestamp,
    (SELECT max(day) FROM dated_checkpoint_days)::timestamp,
    interval '3 months') AS q(day)
WHERE NOT EXISTS (SELECT 1 FROM dated_checkpoint_days c WHERE c.day = q.day::date);

-- The summary tallies (all but tally 2 and 4, the details).
INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, a, b, d1, d2,
    d3, n)
SELECT q.day, x.organisation_id, x.tally, x.inspection_id, x.other, x.a, x.b, x.d1, x.d2, x.d3,
    sum(x.n)::bigint
FROM dated_quarters q
CROSS JOIN LATERAL (
    SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, n
    FROM dated_checkpoints c WHERE c.day = q.base AND c.tally NOT IN (10, 11)
    UNION ALL
    SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, n
    FROM dated_tallies t WHERE t.day >= q.base AND t.day < q.day AND t.tally NOT IN (2, 4)
) x
GROUP BY q.day, x.organisation_id, x.tally, x.inspection_id, x.other, x.a, x.b, x.d1, x.d2, x.d3
HAVING sum(x.n) <> 0;

-- The histograms by organisation (tally 10): the one before's, with the
-- closings between dated as migration 0011 dates them.
INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, a, b, d1, d2,
    d3, n)
SELECT q.day, x.organisation_id, 10, '', '', x.a, 0, NULL, NULL, NULL, sum(x.n)::bigint
FROM dated_quarters q
CROSS JOIN LATERAL (
    SELECT c.organisation_id, c.a, c.n
    FROM dated_checkpoints c WHERE c.day = q.base AND c.tally = 10
    UNION ALL
    SELECT t.organisation_id,
        GREATEST(GREATEST(CASE WHEN t.a <> 0 THEN t.d1 ELSE COALESCE(b.day, t.d1) END, o.day)
            - o.day, 0),
        t.n
    FROM dated_tallies t
    JOIN dated_inspections o ON o.inspection_id = t.inspection_id
    LEFT JOIN dated_inspections b ON t.other <> '' AND b.inspection_id = t.other
    WHERE t.tally = 9 AND t.day >= q.base AND t.day < q.day AND t.n <> 0
        AND (CASE WHEN t.a <> 0 THEN t.d1 ELSE COALESCE(b.day, t.d1) END) IS NOT NULL
) x
GROUP BY q.day, x.organisation_id, x.a
HAVING sum(x.n) <> 0;

-- Summed over everyone (tally 11).
INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, a, b, d1, d2,
    d3, n)
SELECT day, '', 11, '', '', a, 0, NULL, NULL, NULL, sum(n)::bigint
FROM dated_checkpoints WHERE tally = 10 AND day IN (SELECT day FROM dated_quarters)
GROUP BY day, a
HAVING sum(n) <> 0;

INSERT INTO dated_checkpoint_days (day) SELECT day FROM dated_quarters;
