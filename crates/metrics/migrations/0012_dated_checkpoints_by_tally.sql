-- The checkpoints' key with the tally before the organisation: a peer
-- comparison as of a day reads a few tallies of every organisation
-- (totals, inspections, due dates), which under (day, organisation_id,
-- tally, ...) meant walking the whole day's entries (closings and
-- histograms included, ~47,000 on the bench's history; PostgreSQL 15 has no
-- skip scan) to keep ~1,500. The upserts name the columns, not the index,
-- so they find it in either order.
DROP INDEX dated_checkpoints_key;
CREATE UNIQUE INDEX dated_checkpoints_key ON dated_checkpoints
    (day, tally, organisation_id, inspection_id, other, a, b, d1, d2, d3) NULLS NOT DISTINCT;
