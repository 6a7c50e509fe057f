-- The findings service's own tables. Enum columns hold the proto enum
-- numbers of closeout.v1 (stable on the wire, so stable here).

CREATE TABLE organisations (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    kind               smallint NOT NULL,
    most_similar_group text[] NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- Every imported document, byte for byte, keyed by its sha256.
CREATE TABLE source_documents (
    sha256      text PRIMARY KEY,
    source_name text NOT NULL,
    body        text NOT NULL,
    size_bytes  integer NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inspections (
    id              uuid PRIMARY KEY,
    organisation_id text NOT NULL REFERENCES organisations (id),
    programme       text NOT NULL,
    period          text NOT NULL,
    title           text NOT NULL,
    published       text NOT NULL,
    source_sha256   text REFERENCES source_documents (sha256),
    source_name     text NOT NULL DEFAULT '',
    version         bigint NOT NULL DEFAULT 1,
    imported_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, programme, period)
);

CREATE TABLE judgments (
    id              uuid PRIMARY KEY,
    inspection_id   uuid NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
    organisation_id text NOT NULL,
    ordinal         integer NOT NULL,
    pillar          text NOT NULL,
    question        text NOT NULL DEFAULT '',
    grade           smallint NOT NULL,
    scale           smallint NOT NULL,
    last_inspected  text NOT NULL DEFAULT '',
    carried_over    boolean NOT NULL DEFAULT false
);
CREATE INDEX judgments_by_inspection ON judgments (inspection_id, ordinal);
CREATE INDEX judgments_by_organisation ON judgments (organisation_id);

CREATE TABLE findings (
    id                uuid PRIMARY KEY,
    inspection_id     uuid NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
    organisation_id   text NOT NULL,
    ordinal           integer NOT NULL,
    kind              smallint NOT NULL,
    pillar            text NOT NULL DEFAULT '',
    question          text NOT NULL DEFAULT '',
    text              text NOT NULL,
    deadline          text NOT NULL DEFAULT '',
    due_date          date,
    parent_finding_id uuid REFERENCES findings (id) ON DELETE SET NULL,
    addressed_to_all  boolean NOT NULL DEFAULT false,
    line_start        integer NOT NULL DEFAULT 0,
    line_end          integer NOT NULL DEFAULT 0
);
CREATE INDEX findings_by_inspection ON findings (inspection_id, ordinal);
CREATE INDEX findings_by_organisation ON findings (organisation_id, kind);

CREATE TABLE follow_ups (
    id                uuid PRIMARY KEY,
    inspection_id     uuid NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
    organisation_id   text NOT NULL,
    ordinal           integer NOT NULL,
    referenced_period text NOT NULL DEFAULT '',
    referenced_report text NOT NULL DEFAULT '',
    text              text NOT NULL,
    outcome           smallint NOT NULL,
    pillar            text NOT NULL DEFAULT '',
    question          text NOT NULL DEFAULT '',
    line_start        integer NOT NULL DEFAULT 0,
    line_end          integer NOT NULL DEFAULT 0
);
CREATE INDEX follow_ups_by_inspection ON follow_ups (inspection_id, ordinal);

CREATE TABLE indicators (
    id               uuid PRIMARY KEY,
    inspection_id    uuid NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
    organisation_id  text NOT NULL,
    ordinal          integer NOT NULL,
    measure          text NOT NULL,
    period           text NOT NULL DEFAULT '',
    value            double precision NOT NULL,
    unit             text NOT NULL DEFAULT '',
    comparator       text NOT NULL DEFAULT '',
    comparator_value double precision
);
CREATE INDEX indicators_by_inspection ON indicators (inspection_id, ordinal);
CREATE INDEX indicators_by_organisation ON indicators (organisation_id, measure);
