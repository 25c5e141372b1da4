-- Ops run a file again: a quarantined file is reprocessed once its config is
-- mended, and the rows of a completed file rejected ACTION_NOT_FOUND or
-- INQUIRY_NOT_FOUND are retried once the missing actions or inquiries came.
-- Each run is a new received file linked to the original, asked for by
-- someone (its actor), applied in its brand's order and answered to the brand
-- through the original's source. What that answer needs (for mail: whom to
-- answer and the Message-ID to reply to) is recorded as a file is received,
-- so a file no source lists any more can still be answered; answered_at says
-- when it was. Every such request is in the audit log, with who asked.

-- +goose Up
ALTER TABLE received_files
    -- The quarantined file this one runs again (returnsd files reprocess). The
    -- files an archive reprocessed was split into carry it too.
    ADD COLUMN reprocess_of bigint REFERENCES received_files,
    -- The completed file whose rejected rows this one holds (returnsd files
    -- retry-rejected): each row at the line it has in that file.
    ADD COLUMN retry_of bigint REFERENCES received_files,
    -- Who asked for this run: "cli:alice", "web:bob". NULL for a file a source
    -- or the command line's apply brought.
    ADD COLUMN actor text,
    -- What answering the file needs once no source lists it (ledger.Reply):
    -- the name the brand sent, and for mail whom to answer and the message
    -- to reply to. NULL for files received before it was recorded.
    ADD COLUMN reply jsonb,
    -- Quarantined by its source as it was received (a mail refused whole):
    -- its bytes are what the source refused, not a data file to run again.
    ADD COLUMN source_refused boolean NOT NULL DEFAULT false,
    -- When its result or receipt reached the brand (or it turned out there
    -- was none to send). NULL: not yet, or received before it was recorded.
    ADD COLUMN answered_at timestamptz,
    ADD CONSTRAINT received_files_one_origin CHECK (reprocess_of IS NULL OR retry_of IS NULL);
CREATE INDEX received_files_reprocesses ON received_files (reprocess_of) WHERE reprocess_of IS NOT NULL;
CREATE INDEX received_files_retries ON received_files (retry_of) WHERE retry_of IS NOT NULL;

-- A retry's bytes are built from its original's rows, so two retries of the
-- same rows are the same bytes (and a retry of every row may be the
-- original's): the rows a retry may hold are decided by the outcomes its
-- original and earlier retries recorded, line by line, not by the hash.
DROP INDEX received_files_applied_once;
CREATE UNIQUE INDEX received_files_applied_once ON received_files (brand_id, sha256)
    WHERE status = 'COMPLETED' AND retry_of IS NULL;

-- Who did what, beyond the ledger's own events: ops' requests from the command
-- line and the web pages. Append-only, like ledger_events.
CREATE TABLE audit_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,                         -- "cli:alice", "web:bob"
    action   text NOT NULL,                         -- "files.reprocess", "files.retry_rejected", ...
    brand_id bigint REFERENCES brands,              -- the brand acted on, if one
    file_id  bigint REFERENCES received_files,      -- the file acted on, if one
    detail   jsonb NOT NULL DEFAULT '{}'::jsonb     -- the rest: {"new_file_id": 14, "rows": 3}
);
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX audit_log_by_file ON audit_log (file_id) WHERE file_id IS NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_is_append_only;
DROP INDEX received_files_applied_once;
CREATE UNIQUE INDEX received_files_applied_once ON received_files (brand_id, sha256) WHERE status = 'COMPLETED';
DROP INDEX received_files_retries;
DROP INDEX received_files_reprocesses;
ALTER TABLE received_files
    DROP CONSTRAINT received_files_one_origin,
    DROP COLUMN answered_at,
    DROP COLUMN source_refused,
    DROP COLUMN reply,
    DROP COLUMN actor,
    DROP COLUMN retry_of,
    DROP COLUMN reprocess_of;
