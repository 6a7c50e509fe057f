-- ListItems pages an organisation's items in opening order: with this
-- index the first page is read in order instead of sorting all of the
-- organisation's items first (linear in their number).
CREATE INDEX items_by_organisation_in_order ON items (organisation_id, opened_at, id);
