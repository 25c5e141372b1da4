-- The ops pages (web/): who may sign in, their sessions, and the throttle on
-- password guessing. What people do on the pages goes to audit_log (00011).

-- +goose Up
-- A person who signs in to the ops pages. ops sees every brand and may act;
-- a brand user only reads, and only the brands of web_user_brands.
CREATE TABLE web_users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    role          text NOT NULL CHECK (role IN ('ops', 'brand')),
    password_hash text NOT NULL,  -- bcrypt: the cost and salt are in the hash
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_at   timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

CREATE TABLE web_user_brands (
    user_id  bigint NOT NULL REFERENCES web_users ON DELETE CASCADE,
    brand_id bigint NOT NULL REFERENCES brands,
    PRIMARY KEY (user_id, brand_id)
);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is
-- kept, so this table read by someone else signs nobody in.
CREATE TABLE web_sessions (
    token_hash bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES web_users ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    remote_addr text
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

-- Failed sign-ins, by the name tried and the address they came from: too many
-- of either within the throttle's window refuse the next attempt unheard.
-- Shared by every replica; rows older than the window are deleted as new ones come.
CREATE TABLE web_login_failures (
    at          timestamptz NOT NULL DEFAULT now(),
    user_name   text NOT NULL,
    remote_addr text NOT NULL
);
CREATE INDEX web_login_failures_by_name ON web_login_failures (user_name, at);
CREATE INDEX web_login_failures_by_addr ON web_login_failures (remote_addr, at);
CREATE INDEX web_login_failures_by_time ON web_login_failures (at);

-- +goose Down
DROP TABLE web_login_failures;
DROP TABLE web_sessions;
DROP TABLE web_user_brands;
DROP TABLE web_users;
