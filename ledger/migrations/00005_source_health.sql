-- How each source's polls have gone: a source that cannot be reached is backed
-- off (not polled before next_attempt_at) while the others keep flowing, and ops
-- see since when it fails and why.

-- +goose Up
CREATE TABLE source_health (
    source          text PRIMARY KEY,  -- the source's name from the config
    failures        int NOT NULL DEFAULT 0 CHECK (failures >= 0),  -- consecutive failed polls
    last_error      text,
    failing_since   timestamptz,       -- the first of the current run of failures
    last_failure_at timestamptz,
    next_attempt_at timestamptz,       -- backed off until then
    last_success_at timestamptz
);

-- +goose Down
DROP TABLE source_health;
