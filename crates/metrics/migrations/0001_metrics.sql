-- The metrics service's own database: the events it has seen (the history
-- that as-of queries fold) and the current-state read models folded from
-- them. Everything here can be dropped and rebuilt from the stream
-- (`closeout-metrics rebuild`). Enum columns hold proto enum numbers.

-- Every event applied, once (keyed by event id), never updated.
CREATE TABLE events (
    event_id UUID PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    organisation_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    aggregate_version BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    -- The whole envelope, protobuf-encoded.
    envelope BYTEA NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_by_aggregate ON events (aggregate_id, aggregate_version);
CREATE INDEX events_by_time ON events (occurred_at);
CREATE INDEX events_by_organisation ON events (organisation_id, occurred_at);

-- Organisations as registered by the findings service.
CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    most_similar_group TEXT[] NOT NULL,
    version BIGINT NOT NULL
);

-- Inspections: what they are, and which version of their content
-- (judgments, indicators) is current.
CREATE TABLE inspections (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    programme TEXT NOT NULL,
    period TEXT NOT NULL,
    title TEXT NOT NULL,
    published TEXT NOT NULL,
    published_version BIGINT NOT NULL,
    announced BOOLEAN NOT NULL,
    content_version BIGINT NOT NULL
);
CREATE INDEX inspections_by_organisation ON inspections (organisation_id);

-- Judgments of the current content version of each inspection.
CREATE TABLE judgments (
    inspection_id TEXT NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
    judgment_id TEXT NOT NULL,
    pillar TEXT NOT NULL,
    question TEXT NOT NULL,
    grade SMALLINT NOT NULL,
    scale SMALLINT NOT NULL,
    carried_over BOOLEAN NOT NULL,
    last_inspected TEXT NOT NULL,
    PRIMARY KEY (inspection_id, judgment_id)
);

-- Context indicators of the current content version of each inspection.
CREATE TABLE indicators (
    inspection_id TEXT NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
    indicator_id TEXT NOT NULL,
    measure TEXT NOT NULL,
    period TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    comparator TEXT NOT NULL,
    comparator_value DOUBLE PRECISION NULL,
    PRIMARY KEY (inspection_id, indicator_id)
);

-- Tracked items, current state.
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    finding_id TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    pillar TEXT NOT NULL,
    question TEXT NOT NULL,
    status SMALLINT NOT NULL,
    opened BOOLEAN NOT NULL,
    opened_at TIMESTAMPTZ NULL,
    closed_at TIMESTAMPTZ NULL,
    due_date DATE NULL,
    overdue BOOLEAN NOT NULL,
    closed_by_inspection_id TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX items_by_organisation ON items (organisation_id);
