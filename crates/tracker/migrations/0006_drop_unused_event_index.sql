-- Nothing reads item_events by (organisation_id, sequence) since WatchItems
-- orders by watch_xid (0004 added the index it reads); every event insert
-- still paid for keeping this one.
DROP INDEX IF EXISTS item_events_by_organisation;
