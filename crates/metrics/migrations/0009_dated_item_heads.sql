-- What the as-of upkeep (`crate::dated`) needs to extend an item's dated
-- states from the events of a batch without reading its history: when the
-- batch's events follow the stored ones (next versions) and take effect
-- no earlier than any stored one, the new states are the live item's
-- state before the batch with the new events applied. One row per opened
-- item, written with its `dated_items` rows; an item without one (never
-- opened, or a database from before this table) is recomputed from its
-- history, which writes it.
CREATE TABLE dated_item_heads (
    item_id TEXT PRIMARY KEY,
    -- The version of its last event in fold order.
    version BIGINT NOT NULL,
    -- The latest effective day of any of its events.
    last_day DATE NOT NULL,
    -- The effective day of its last event, and whether that event is a
    -- verification or supersession (the next version's StatusChanged, the
    -- same command, takes that day).
    event_day DATE NOT NULL,
    dates_next BOOLEAN NOT NULL,
    -- The effective day of its opening (no event counts before it).
    opened_day DATE NOT NULL
);
