-- An indicator's comparator names who is compared ("same organisation" for a
-- workforce row); the comparator's own date, when it differs from the
-- indicator's period, is its comparator_period. Rows stored before this
-- migration held that date in comparator: move it.
ALTER TABLE indicators ADD COLUMN comparator_period text NOT NULL DEFAULT '';

UPDATE indicators
   SET comparator_period = comparator,
       comparator = 'same organisation'
 WHERE comparator ~ '^[0-9]{1,2} [A-Za-z]+ [0-9]{4}$';
