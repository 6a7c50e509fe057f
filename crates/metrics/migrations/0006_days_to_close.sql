-- Days-to-close histograms (src/tally.rs, DaysToClose), kept as events
-- apply so that a peer comparison reads a few rows per organisation
-- instead of dating every organisation's closings when asked. A closing
-- counts once its inspection is dated; its days run from that date to the
-- verification's effective date, else the closing inspection's date, else
-- the day the closure was recorded (tally_closing's closing_day).
--
-- tally_dates holds the date each histogram count assumed for an
-- inspection, with the publication text it was read from: when an
-- inspection's text changes the consumer moves the counts of the closings
-- it dates, and a reader finds inspections whose text no longer matches
-- (or that have no row) and corrects their closings when answering.

CREATE TABLE tally_dates (
    inspection_id TEXT PRIMARY KEY,
    published TEXT NOT NULL,
    day DATE NULL
);

-- Closed items of dated inspections by organisation and days to close.
CREATE TABLE tally_days (
    organisation_id TEXT NOT NULL,
    days BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, days)
);

-- The same summed over every organisation (a peer comparison's "all").
CREATE TABLE tally_days_all (
    days BIGINT PRIMARY KEY,
    n BIGINT NOT NULL
);

-- The closings an inspection dates, found when its date changes.
CREATE INDEX tally_closing_by_inspection ON tally_closing (inspection_id);
CREATE INDEX tally_closing_by_closer ON tally_closing (closed_by_inspection_id)
    WHERE closed_by_inspection_id <> '';

-- Filled here from the closings already tallied. Only texts whose date is
-- certain without the service's parser (closeout_domain::PublishedDate)
-- get a row: "YYYY-MM" (its first day) and "YYYY-MM-DD", years 1900–2199,
-- real dates; and the empty text (no date). Any other text has no row, so
-- readers correct its closings until the consumer next re-dates it.
INSERT INTO tally_dates
SELECT id, published, make_date(y, m, COALESCE(d, 1))
FROM (
    SELECT id, published,
        CASE WHEN iso THEN substr(published, 1, 4)::int END AS y,
        CASE WHEN iso THEN substr(published, 6, 2)::int END AS m,
        CASE WHEN iso AND length(published) = 10 THEN substr(published, 9, 2)::int END AS d
    FROM (SELECT id, published, published ~ '^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$' AS iso
        FROM inspections) i
) p
WHERE y BETWEEN 1900 AND 2199 AND m BETWEEN 1 AND 12
    AND COALESCE(d, 1) BETWEEN 1
        AND extract(day FROM (make_date(CASE WHEN y BETWEEN 1900 AND 2199 THEN y ELSE 2000 END,
            CASE WHEN m BETWEEN 1 AND 12 THEN m ELSE 1 END, 1)
            + interval '1 month' - interval '1 day'))::int;

INSERT INTO tally_dates
SELECT id, published, NULL FROM inspections WHERE published = ''
ON CONFLICT DO NOTHING;

INSERT INTO tally_days
SELECT c.organisation_id,
    GREATEST(GREATEST(CASE WHEN c.verified THEN c.closing_day
        ELSE COALESCE(b.day, c.closing_day) END, o.day) - o.day, 0)::bigint,
    sum(c.n)::bigint
FROM tally_closing c
JOIN tally_dates o ON o.inspection_id = c.inspection_id AND o.day IS NOT NULL
LEFT JOIN tally_dates b ON b.inspection_id = c.closed_by_inspection_id
    AND c.closed_by_inspection_id <> ''
WHERE c.n <> 0 AND (CASE WHEN c.verified THEN c.closing_day
    ELSE COALESCE(b.day, c.closing_day) END) IS NOT NULL
GROUP BY 1, 2
HAVING sum(c.n) <> 0;

INSERT INTO tally_days_all
SELECT days, sum(n)::bigint FROM tally_days GROUP BY 1 HAVING sum(n) <> 0;
