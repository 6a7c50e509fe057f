-- Reports arrive as text, saved web pages or PDFs (issue 11): the text the
-- parser read stays in body (line numbers point into it); a web page's or
-- PDF's own bytes are kept beside it, with the media type it was read as.
ALTER TABLE source_documents
    ADD COLUMN media_type text NOT NULL DEFAULT 'text/plain',
    ADD COLUMN original bytea;

-- Organisations change: services merge, forces are renamed. From
-- effective_date the successor answers for the predecessor's open items.
-- No foreign keys to organisations: a known succession may be listed before
-- either organisation has a report here.
CREATE TABLE successions (
    predecessor_id text NOT NULL,
    successor_id   text NOT NULL,
    effective_date date NOT NULL,
    note           text NOT NULL DEFAULT '',
    -- 'recorded' (by an inspectorate user) or 'known' (the service's list).
    source         text NOT NULL,
    recorded_by    text NOT NULL DEFAULT '',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (predecessor_id, successor_id),
    CHECK (predecessor_id <> successor_id)
);
CREATE INDEX successions_by_successor ON successions (successor_id);
