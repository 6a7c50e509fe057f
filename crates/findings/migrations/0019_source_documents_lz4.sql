-- Every import stores its document (the sample is 94 KB). PostgreSQL's
-- default TOAST compression, pglz, took ~17 ms of a loaded 2-core machine
-- per sample document — the largest single cost of ImportReport; lz4 takes
-- ~3.5 ms for about the same size (19 MB against 17 MB for 200 documents).
-- New rows only; rows already stored stay readable as they are. Skipped
-- where the server was built without lz4.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE source_documents
            ALTER COLUMN body SET COMPRESSION lz4,
            ALTER COLUMN original SET COMPRESSION lz4;
    END IF;
END
$$;
