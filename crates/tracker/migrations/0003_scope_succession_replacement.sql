-- Reconciliation across the inspectorate's corpus: what a follow-up
-- statement covers (one item, every item of a kind and period, or a
-- summary), quoted earlier items, causes of concern's recommendations,
-- organisations succeeded by others, corrected documents and national
-- recommendations by audience.

-- closeout.v1.FindingKind / FollowUpScope numbers; `inspection_version` is
-- the inspection's version the statement belongs to (a corrected document
-- re-records its statements under the next version).
ALTER TABLE follow_ups
    ADD COLUMN referenced_kind    smallint NOT NULL DEFAULT 0,
    ADD COLUMN scope              smallint NOT NULL DEFAULT 0,
    ADD COLUMN stated_count       integer NOT NULL DEFAULT 0,
    ADD COLUMN quoted_item        text NOT NULL DEFAULT '',
    ADD COLUMN inspection_version bigint NOT NULL DEFAULT 0;

-- A recommendation's cause of concern (its finding id), so that a closed
-- cause of concern closes its recommendations' proposals too.
ALTER TABLE inspection_findings
    ADD COLUMN parent_finding_id text NOT NULL DEFAULT '';

-- One standing proposal per (item, inspection): a withdrawn one (status 5,
-- its inspection replaced by a corrected document) leaves room for the
-- proposal made from the new text.
ALTER TABLE proposals DROP CONSTRAINT proposals_item_id_inspection_id_key;
CREATE UNIQUE INDEX proposals_one_standing ON proposals (item_id, inspection_id)
    WHERE status <> 5;

-- Predecessor -> successor (a merger or a renamed force), from
-- OrganisationSucceeded: the successor's reports are reconciled against the
-- predecessor's open items too.
CREATE TABLE successions (
    predecessor_id text NOT NULL,
    successor_id   text NOT NULL,
    effective_date text NOT NULL DEFAULT '',
    note           text NOT NULL DEFAULT '',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (predecessor_id, successor_id)
);
CREATE INDEX successions_by_successor ON successions (successor_id);

-- national_findings.organisation_kind 0 now means "every kind": a
-- recommendation addressed to chief constables and chief fire officers alike.
