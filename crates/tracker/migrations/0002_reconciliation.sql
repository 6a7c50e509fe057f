-- Reconciliation across inspections: what the tracker keeps of each
-- inspection, its findings and follow-up statements (only what matching
-- needs), the proposals made for earlier items, the links recorded when
-- they are accepted, and each organisation's automatic-acceptance policy.

-- One row per inspection heard of (from FindingRecorded, FollowUpRecorded
-- or InspectionPublished). `announced` once InspectionPublished arrived.
CREATE TABLE inspections (
    id                  text PRIMARY KEY,
    organisation_id     text NOT NULL,
    programme           text NOT NULL DEFAULT '',
    period              text NOT NULL DEFAULT '',
    title               text NOT NULL DEFAULT '',
    published           text NOT NULL DEFAULT '',
    inspected_questions text[] NOT NULL DEFAULT '{}',
    announced           boolean NOT NULL DEFAULT false
);
CREATE INDEX inspections_by_organisation ON inspections (organisation_id);

-- Every finding of every inspection (noteworthy practice included): a new
-- finding may re-raise an earlier item.
CREATE TABLE inspection_findings (
    finding_id      text PRIMARY KEY,
    inspection_id   text NOT NULL,
    organisation_id text NOT NULL,
    kind            smallint NOT NULL,
    pillar          text NOT NULL DEFAULT '',
    question        text NOT NULL DEFAULT '',
    text            text NOT NULL,
    line_start      integer NOT NULL DEFAULT 0,
    line_end        integer NOT NULL DEFAULT 0
);
CREATE INDEX inspection_findings_by_inspection ON inspection_findings (inspection_id);

-- Follow-up statements: what a report says about earlier items.
CREATE TABLE follow_ups (
    follow_up_id      text PRIMARY KEY,
    inspection_id     text NOT NULL,
    organisation_id   text NOT NULL,
    referenced_period text NOT NULL DEFAULT '',
    referenced_report text NOT NULL DEFAULT '',
    text              text NOT NULL,
    outcome           smallint NOT NULL,
    pillar            text NOT NULL DEFAULT '',
    question          text NOT NULL DEFAULT '',
    line_start        integer NOT NULL DEFAULT 0,
    line_end          integer NOT NULL DEFAULT 0
);
CREATE INDEX follow_ups_by_inspection ON follow_ups (inspection_id);

-- Reconciliation proposals: one per (earlier item, later inspection), so a
-- replayed or re-imported inspection proposes nothing new. `outcome` and
-- `status` hold closeout.v1.ProposalOutcome / ProposalStatus numbers.
CREATE TABLE proposals (
    id                   uuid PRIMARY KEY,
    item_id              uuid NOT NULL REFERENCES items (id),
    organisation_id      text NOT NULL,
    inspection_id        text NOT NULL,
    outcome              smallint NOT NULL,
    status               smallint NOT NULL,
    score                double precision NOT NULL,
    rule                 text NOT NULL,
    quotes               text[] NOT NULL DEFAULT '{}',
    line_start           integer NOT NULL DEFAULT 0,
    line_end             integer NOT NULL DEFAULT 0,
    matched_finding_id   text NOT NULL DEFAULT '',
    matched_follow_up_id text NOT NULL DEFAULT '',
    decision_reason      text NOT NULL DEFAULT '',
    -- The closeout.v1.Actor who decided, encoded; NULL while pending.
    decided_by           bytea,
    created_at           timestamptz NOT NULL,
    decided_at           timestamptz,
    version              bigint NOT NULL,
    UNIQUE (item_id, inspection_id)
);
CREATE INDEX proposals_by_organisation ON proposals (organisation_id, status);
CREATE INDEX proposals_by_inspection ON proposals (inspection_id);

-- Links across inspections (closeout.v1.LinkRelation numbers). `to_id` is
-- an item id, or an inspection id for CLOSED_BY.
CREATE TABLE item_links (
    from_item_id    text NOT NULL,
    to_id           text NOT NULL,
    relation        smallint NOT NULL,
    organisation_id text NOT NULL,
    inspection_id   text NOT NULL DEFAULT '',
    proposal_id     uuid,
    linked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (from_item_id, to_id, relation)
);
CREATE INDEX item_links_by_organisation ON item_links (organisation_id);

-- An organisation whose proposals scoring at least `auto_accept_min_score`
-- are accepted automatically (recorded as AUTO_ACCEPTED). No row: every
-- proposal waits for a person.
CREATE TABLE reconciliation_policy (
    organisation_id       text PRIMARY KEY,
    auto_accept_min_score double precision NOT NULL
        CHECK (auto_accept_min_score > 0 AND auto_accept_min_score <= 1)
);
