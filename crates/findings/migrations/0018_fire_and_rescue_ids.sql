-- A fire and rescue service's id now ends in "-fire" ("hertfordshire-fire",
-- "london-fire"); a police force's id is its place alone ("hertfordshire").
-- Before, both slugged to the place, so a service could take a force's id or
-- a fire report be stored under the force (closeout_domain::organisation_id_for
-- states the rule). This renames what was stored under the old rule and
-- records every change in organisation_renames, which the tracker and
-- metrics apply to their own copies.

CREATE TABLE organisation_renames (
    old_id        text NOT NULL,
    new_id        text NOT NULL,
    -- Set when only this inspection moved (a fire report that had been
    -- stored under a police force of the same place); NULL when the whole
    -- organisation was renamed.
    inspection_id uuid,
    renamed_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (old_id <> new_id)
);
CREATE INDEX organisation_renames_by_old ON organisation_renames (old_id);

-- The id the rule gives a service whose old id is `id` (room for the mark
-- within 64 characters; an id already saying "fire" keeps it).
CREATE FUNCTION pg_temp.fire_id(id text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN id ~ '(^|-)fire(-|$)' THEN id
        ELSE rtrim(left(id, 58), '-') || '-fire'
    END
$$;

-- 1. Services stored under an old id (kind 2 = fire and rescue service),
--    with no police inspection (PEEL) merged into them: renamed whole.
INSERT INTO organisation_renames (old_id, new_id)
SELECT o.id, pg_temp.fire_id(o.id)
FROM organisations o
WHERE o.kind = 2
  AND pg_temp.fire_id(o.id) <> o.id
  AND NOT EXISTS (SELECT 1 FROM organisations t WHERE t.id = pg_temp.fire_id(o.id))
  AND NOT EXISTS (SELECT 1 FROM inspections i WHERE i.organisation_id = o.id AND i.programme = 'PEEL');

-- 2. One id holding both bodies: fire and rescue inspections (programme
--    FRS) under a police force (kind 1), or any non-PEEL inspection under a
--    service that also holds a force's PEEL inspections. Those inspections
--    move to the service's new id; the old id stays the force's.
INSERT INTO organisation_renames (old_id, new_id, inspection_id)
SELECT i.organisation_id, pg_temp.fire_id(i.organisation_id), i.id
FROM inspections i
JOIN organisations o ON o.id = i.organisation_id
WHERE pg_temp.fire_id(o.id) <> o.id
  AND ((o.kind = 1 AND i.programme = 'FRS')
    OR (o.kind = 2 AND i.programme <> 'PEEL'
        AND NOT EXISTS (SELECT 1 FROM organisation_renames r WHERE r.old_id = o.id)));

-- The services' organisations: a renamed service keeps its name; one that
-- was under a force is named as its inspection's title names it.
INSERT INTO organisations (id, name, kind, created_at)
SELECT DISTINCT ON (r.new_id)
       r.new_id,
       CASE WHEN o.kind = 2 THEN o.name
            ELSE coalesce(
                substring(i.title FROM '(?i)inspection of (.*\mfire\M.*)$'),
                initcap(replace(r.old_id, '-', ' ')) || ' Fire and Rescue Service')
       END,
       2,
       o.created_at
FROM organisation_renames r
JOIN organisations o ON o.id = r.old_id
LEFT JOIN inspections i ON i.id = r.inspection_id
WHERE NOT EXISTS (SELECT 1 FROM organisations t WHERE t.id = r.new_id)
ORDER BY r.new_id, r.inspection_id NULLS FIRST;

-- A service's id that also held a force's PEEL inspections is the force's
-- from now on (named as a PEEL inspection's title names it).
UPDATE organisations o
SET kind = 1,
    name = coalesce(
        (SELECT substring(i.title FROM '(?i)inspection of (.*)$')
         FROM inspections i
         WHERE i.organisation_id = o.id AND i.programme = 'PEEL'
         ORDER BY i.published DESC LIMIT 1),
        initcap(replace(o.id, '-', ' ')) || ' Police')
WHERE o.kind = 2
  AND EXISTS (SELECT 1 FROM inspections i WHERE i.organisation_id = o.id AND i.programme = 'PEEL');

-- Whole organisations: every row moves.
UPDATE organisations n SET most_similar_group = o.most_similar_group
FROM organisation_renames r JOIN organisations o ON o.id = r.old_id
WHERE r.inspection_id IS NULL AND n.id = r.new_id;
UPDATE inspections t SET organisation_id = r.new_id
FROM organisation_renames r WHERE r.inspection_id IS NULL AND t.organisation_id = r.old_id;
UPDATE judgments t SET organisation_id = r.new_id
FROM organisation_renames r WHERE r.inspection_id IS NULL AND t.organisation_id = r.old_id;
UPDATE findings t SET organisation_id = r.new_id
FROM organisation_renames r WHERE r.inspection_id IS NULL AND t.organisation_id = r.old_id;
UPDATE follow_ups t SET organisation_id = r.new_id
FROM organisation_renames r WHERE r.inspection_id IS NULL AND t.organisation_id = r.old_id;
UPDATE indicators t SET organisation_id = r.new_id
FROM organisation_renames r WHERE r.inspection_id IS NULL AND t.organisation_id = r.old_id;
UPDATE successions t SET predecessor_id = r.new_id
FROM organisation_renames r WHERE r.inspection_id IS NULL AND t.predecessor_id = r.old_id;
UPDATE successions t SET successor_id = r.new_id
FROM organisation_renames r WHERE r.inspection_id IS NULL AND t.successor_id = r.old_id;
-- Most similar groups are left alone: they name police forces, whose ids
-- do not change.
DELETE FROM organisations t
USING organisation_renames r WHERE r.inspection_id IS NULL AND t.id = r.old_id;

-- Single inspections: the inspection and its children move.
UPDATE inspections t SET organisation_id = r.new_id
FROM organisation_renames r WHERE t.id = r.inspection_id;
UPDATE judgments t SET organisation_id = r.new_id
FROM organisation_renames r WHERE t.inspection_id = r.inspection_id;
UPDATE findings t SET organisation_id = r.new_id
FROM organisation_renames r WHERE t.inspection_id = r.inspection_id;
UPDATE follow_ups t SET organisation_id = r.new_id
FROM organisation_renames r WHERE t.inspection_id = r.inspection_id;
UPDATE indicators t SET organisation_id = r.new_id
FROM organisation_renames r WHERE t.inspection_id = r.inspection_id;

-- 3. The shipped list of known successions (data/successions.toml) is all
--    fire and rescue services; its rows stored before any report of them
--    take the new ids too (the list now names them).
UPDATE successions SET predecessor_id = pg_temp.fire_id(predecessor_id),
                       successor_id = pg_temp.fire_id(successor_id)
WHERE source = 'known'
  AND pg_temp.fire_id(predecessor_id) IN ('isle-of-wight-fire', 'hampshire-fire')
  AND pg_temp.fire_id(successor_id) = 'hampshire-and-isle-of-wight-fire';
