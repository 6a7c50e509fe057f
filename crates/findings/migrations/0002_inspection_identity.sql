-- Until 2018/19, PEEL published one report per pillar each year
-- (effectiveness, efficiency, legitimacy): same organisation, programme and
-- period, different reports. The title tells them apart.
ALTER TABLE inspections DROP CONSTRAINT inspections_organisation_id_programme_period_key;
ALTER TABLE inspections
    ADD CONSTRAINT inspections_identity UNIQUE (organisation_id, programme, period, title);
