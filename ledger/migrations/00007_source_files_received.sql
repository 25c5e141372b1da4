-- A file a source delivered is taken in two steps now, so that any replica can
-- apply it and a large file holds up no other source: the poll fetches it and
-- keeps its bytes (RECEIVED, with the received file), and a job of its own
-- applies it, delivers its result and acknowledges the source's copy.

-- +goose Up
ALTER TABLE source_files DROP CONSTRAINT source_files_state_check;
ALTER TABLE source_files ADD CONSTRAINT source_files_state_check
    CHECK (state IN ('SEEN', 'RECEIVED', 'DONE', 'ACKED'));
ALTER TABLE source_files DROP CONSTRAINT source_files_check;
ALTER TABLE source_files ADD CONSTRAINT source_files_state_status_check
    CHECK ((state IN ('SEEN', 'RECEIVED')) = (status IS NULL));
ALTER TABLE source_files ADD CONSTRAINT source_files_received_check
    CHECK (state <> 'RECEIVED' OR file_id IS NOT NULL);
-- Files of a brand are applied in the order they arrived: the oldest first.
CREATE INDEX received_files_waiting ON received_files (brand_id, id) WHERE status = 'RECEIVED';

-- +goose Down
DROP INDEX received_files_waiting;
DELETE FROM source_files WHERE state = 'RECEIVED';
ALTER TABLE source_files DROP CONSTRAINT source_files_received_check;
ALTER TABLE source_files DROP CONSTRAINT source_files_state_status_check;
ALTER TABLE source_files ADD CONSTRAINT source_files_check CHECK ((state = 'SEEN') = (status IS NULL));
ALTER TABLE source_files DROP CONSTRAINT source_files_state_check;
ALTER TABLE source_files ADD CONSTRAINT source_files_state_check CHECK (state IN ('SEEN', 'DONE', 'ACKED'));
