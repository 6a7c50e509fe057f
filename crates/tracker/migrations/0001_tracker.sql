-- The tracker service's own tables. Enum columns hold the proto enum
-- numbers of closeout.v1 (stable on the wire, so stable here).

-- Organisations the tracker has heard of, from OrganisationRegistered or
-- from any FindingRecorded naming them. kind 0: not known yet.
CREATE TABLE organisations (
    id         text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    kind       smallint NOT NULL DEFAULT 0,
    learned_at timestamptz NOT NULL DEFAULT now()
);

-- National recommendations, kept so that an organisation learned later
-- gets its own item too. `finding` is the FindingRecorded payload.
CREATE TABLE national_findings (
    finding_id        text PRIMARY KEY,
    organisation_kind smallint NOT NULL,
    finding           bytea NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);

-- Current state of every tracked item, updated in the transaction that
-- appends its events.
CREATE TABLE items (
    id                    uuid PRIMARY KEY,
    organisation_id       text NOT NULL,
    finding_id            text NOT NULL,
    inspection_id         text NOT NULL DEFAULT '',
    kind                  smallint NOT NULL,
    pillar                text NOT NULL DEFAULT '',
    question              text NOT NULL DEFAULT '',
    text                  text NOT NULL,
    status                smallint NOT NULL,
    owner                 text NOT NULL DEFAULT '',
    due_date              date,
    overdue               boolean NOT NULL DEFAULT false,
    version               bigint NOT NULL,
    opened_at             timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    closure_reference     text NOT NULL DEFAULT '',
    -- Encoded closeout.v1.Evidence messages, in claim order.
    evidence              bytea[] NOT NULL DEFAULT '{}',
    carried_from_item_id  text NOT NULL DEFAULT '',
    superseded_by_item_id text NOT NULL DEFAULT '',
    -- One item per finding per organisation: replaying opens nothing new.
    UNIQUE (finding_id, organisation_id)
);
CREATE INDEX items_by_organisation ON items (organisation_id, status);
CREATE INDEX items_by_inspection ON items (inspection_id);
CREATE INDEX items_not_yet_overdue ON items (due_date) WHERE NOT overdue;

-- The history: every event of every item, in one global order. `sequence`
-- is the position WatchItems resumes from; rows are inserted under a
-- transaction-scoped advisory lock so sequences commit in order.
CREATE TABLE item_events (
    sequence        bigserial PRIMARY KEY,
    item_id         uuid NOT NULL REFERENCES items (id),
    version         bigint NOT NULL,
    event_id        uuid NOT NULL UNIQUE,
    event_type      text NOT NULL,
    organisation_id text NOT NULL,
    actor_subject   text NOT NULL,
    actor_role      smallint NOT NULL,
    occurred_at     timestamptz NOT NULL,
    status_before   smallint NOT NULL,
    status_after    smallint NOT NULL,
    -- The closeout.v1.EventEnvelope, encoded.
    envelope        bytea NOT NULL,
    -- The closeout.v1.TrackedItem as it stood after this event, encoded.
    item_after      bytea NOT NULL,
    UNIQUE (item_id, version)
);
CREATE INDEX item_events_by_organisation ON item_events (organisation_id, sequence);
