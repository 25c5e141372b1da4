-- What each source has listed and what became of it: the poller's memory across
-- restarts. A file is keyed by what the server says about it (full path, size,
-- modification time); its content hash is added once it has been fetched.

-- +goose Up
CREATE TABLE source_files (
    source     text NOT NULL,         -- the source's name from the config
    path       text NOT NULL,         -- the full path (or identifier) on the source
    size       bigint NOT NULL,
    mod_time   timestamptz NOT NULL,  -- microseconds, as the source reported it
    -- SEEN: listed, not yet taken (stability is judged on the next listing);
    -- DONE: its outcome is committed in the ledger, the source's copy not yet acknowledged;
    -- ACKED: moved, deleted or (after: leave) left alone for good.
    state      text NOT NULL DEFAULT 'SEEN' CHECK (state IN ('SEEN', 'DONE', 'ACKED')),
    sha256     bytea,                 -- set once fetched
    file_id    bigint REFERENCES received_files,
    status     text CHECK (status IN ('COMPLETED', 'DUPLICATE_FILE', 'QUARANTINED')),
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    done_at    timestamptz,
    acked_at   timestamptz,
    PRIMARY KEY (source, path, size, mod_time),
    CHECK ((state = 'SEEN') = (status IS NULL))
);
-- The same bytes under the same path (touched, or re-uploaded with after: leave) are not fetched twice.
CREATE INDEX source_files_by_hash ON source_files (source, sha256) WHERE state <> 'SEEN';

-- +goose Down
DROP TABLE source_files;
