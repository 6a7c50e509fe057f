-- Tallies: the live figures kept incrementally (src/tally.rs). Each opened
-- item counts once under each table's key; the consumer moves an item's
-- count when its state changes, in the transaction that records the event.
-- Zero counts may remain. Filled here from the items already folded.

CREATE TABLE tally_counts (
    organisation_id TEXT NOT NULL,
    status SMALLINT NOT NULL,
    kind SMALLINT NOT NULL,
    pillar TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, status, kind, pillar)
);

CREATE TABLE tally_inspections (
    organisation_id TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, inspection_id)
);

-- Open items (neither closed, 4, nor superseded, 5).
CREATE TABLE tally_open (
    organisation_id TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    opened_day DATE NULL,
    n BIGINT NOT NULL,
    UNIQUE NULLS NOT DISTINCT (organisation_id, inspection_id, opened_day)
);

CREATE TABLE tally_due (
    organisation_id TEXT NOT NULL,
    due_date DATE NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, due_date)
);

CREATE TABLE tally_closed (
    organisation_id TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    opened_day DATE NULL,
    verified_on DATE NULL,
    closed_by_inspection_id TEXT NOT NULL,
    closed_day DATE NULL,
    n BIGINT NOT NULL,
    UNIQUE NULLS NOT DISTINCT (organisation_id, inspection_id, opened_day, verified_on,
        closed_by_inspection_id, closed_day)
);

-- Dates in UTC, as the service reads instants.
SET LOCAL TIME ZONE 'UTC';

INSERT INTO tally_counts
SELECT organisation_id, status, kind, pillar, count(*) FROM items WHERE opened
GROUP BY 1, 2, 3, 4;

INSERT INTO tally_inspections
SELECT organisation_id, inspection_id, count(*) FROM items WHERE opened GROUP BY 1, 2;

INSERT INTO tally_open
SELECT organisation_id, inspection_id, opened_at::date, count(*) FROM items
WHERE opened AND status NOT IN (4, 5) GROUP BY 1, 2, 3;

INSERT INTO tally_due
SELECT organisation_id, due_date, count(*) FROM items
WHERE opened AND status NOT IN (4, 5) AND due_date IS NOT NULL GROUP BY 1, 2;

INSERT INTO tally_closed
SELECT organisation_id, inspection_id, opened_at::date, verified_on, closed_by_inspection_id,
    closed_at::date, count(*) FROM items
WHERE opened AND status = 4 GROUP BY 1, 2, 3, 4, 5, 6;
