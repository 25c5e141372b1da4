-- A zip holding several data files is split when it is received: each data
-- file is a received file of its own, linked to the archive, applied and
-- answered as its own file. The archive is COMPLETED as split (kind archive).

-- +goose Up
ALTER TABLE received_files ADD COLUMN parent_id bigint REFERENCES received_files;
CREATE INDEX received_files_children ON received_files (parent_id) WHERE parent_id IS NOT NULL;

-- +goose Down
DROP INDEX received_files_children;
ALTER TABLE received_files DROP COLUMN parent_id;
