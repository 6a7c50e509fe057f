-- WatchItems order without a global lock (see crates/tracker/src/watch.rs).
--
-- `watch_xid` is the transaction id that wrote the row, raised to at least
-- the `watch_xid` of the item's previous event, so an item's events are in
-- version order. A row becomes visible to WatchItems only once its
-- `watch_xid` is below the oldest transaction of this database still
-- running (and the next id): every transaction that could still add a row
-- with a smaller (watch_xid, sequence) has then ended, so the order
-- (watch_xid, sequence) only ever grows at its end.
--
-- Rows written before this migration were committed under the old
-- advisory lock in sequence order; watch_xid 0 keeps them in that order,
-- ahead of every later row.
ALTER TABLE item_events ADD COLUMN watch_xid xid8 NOT NULL DEFAULT '0';
-- A writer that does not set it still gets its own transaction id.
ALTER TABLE item_events ALTER COLUMN watch_xid SET DEFAULT pg_current_xact_id();
CREATE INDEX item_events_in_watch_order ON item_events (watch_xid, sequence);
CREATE INDEX item_events_by_organisation_in_watch_order
    ON item_events (organisation_id, watch_xid, sequence);
