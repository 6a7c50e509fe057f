-- Each rename recorded in organisation_renames (migration 0018) is
-- announced once, as an OrganisationRenamed event through the outbox, so
-- that the tracker and metrics move their own copies: announced_at is set
-- in the transaction that writes the event (crates/findings/src/renames.rs),
-- and id is the order renames are announced in (the order they were
-- recorded: whole organisations first, then single inspections).
ALTER TABLE organisation_renames
    ADD COLUMN id bigserial PRIMARY KEY,
    ADD COLUMN announced_at timestamptz;
CREATE INDEX organisation_renames_unannounced ON organisation_renames (id)
    WHERE announced_at IS NULL;
