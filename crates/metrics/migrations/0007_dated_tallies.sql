-- Dated tallies (`crate::dated`): as-of answers summed from dated deltas
-- instead of folding the whole history. Filled by the service on start
-- (`dated::fill_if_pending`: the deltas need the events' envelopes
-- decoded, which SQL cannot do), then kept by the consumers; a rebuild
-- empties the tables with the other read models and its replay refills them.

-- The change of each tally key that takes effect on `day`, summed over
-- items. `tally` says which tally and which columns make its key (see
-- dated.rs); unused columns hold '' or 0 or NULL.
CREATE TABLE dated_tallies (
    organisation_id TEXT NOT NULL,
    day DATE NOT NULL,
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
CREATE UNIQUE INDEX dated_tallies_key ON dated_tallies
    (organisation_id, day, tally, inspection_id, other, a, b, d1, d2, d3) NULLS NOT DISTINCT;
CREATE INDEX dated_tallies_by_day ON dated_tallies (day);

-- Each item's contribution from each effective day on (its dated states):
-- what its deltas were computed from, taken away when it is recomputed.
CREATE TABLE dated_items (
    item_id TEXT NOT NULL,
    day DATE NOT NULL,
    organisation_id TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    pillar TEXT NOT NULL,
    opened_day DATE NULL,
    due_date DATE NULL,
    verified_on DATE NULL,
    closed_by_inspection_id TEXT NOT NULL,
    closed_day DATE NULL,
    PRIMARY KEY (item_id, day)
);

-- What an item's effective days depend on: the inspections it names and
-- the items that superseded it. A change to one recomputes the item.
CREATE TABLE dated_refs (
    ref_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (ref_id, item_id)
);
CREATE INDEX dated_refs_by_item ON dated_refs (item_id);

-- Every inspection's date as the as-of rules give it (publication date,
-- else the day its first event was recorded).
CREATE TABLE dated_inspections (
    inspection_id TEXT PRIMARY KEY,
    day DATE NOT NULL
);

-- Whether the tables above have been filled from the history once.
CREATE TABLE dated_fill (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    filled BOOLEAN NOT NULL
);
INSERT INTO dated_fill (filled) VALUES (FALSE);
