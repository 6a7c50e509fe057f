-- History is dated by the documents and the recorded actions: a
-- verification may carry the date the closure took effect (a closure
-- letter recorded later). Items opened before this column existed have
-- none; a rebuild (`closeout-metrics rebuild`) refolds them from the stream.
ALTER TABLE items ADD COLUMN verified_on DATE NULL;
-- The as-of queries read an organisation's items' inspections by id.
CREATE INDEX items_by_inspection ON items (inspection_id);
