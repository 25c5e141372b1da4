-- The action ledger: brands and their contracts, actions, the append-only event
-- log, received files with their bytes, and what happened to every row.

-- +goose Up
CREATE TABLE brands (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug              text NOT NULL UNIQUE,
    name              text NOT NULL,
    currency          char(3) NOT NULL,
    timezone          text NOT NULL,
    locking_days      int CHECK (locking_days >= 0),  -- NULL: open-ended locking
    payout_delay_days int NOT NULL CHECK (payout_delay_days >= 0),
    synced_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trackers (
    brand_id       bigint NOT NULL REFERENCES brands,
    id             bigint NOT NULL,
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('SALE', 'LEAD', 'INSTALL', 'CPC')),
    payout_percent numeric(7, 4) CHECK (payout_percent BETWEEN 0 AND 100),
    payout_fixed   numeric(14, 2) CHECK (payout_fixed >= 0),
    PRIMARY KEY (brand_id, id),
    CHECK ((payout_percent IS NULL) <> (payout_fixed IS NULL))
);

CREATE TABLE partners (
    id         bigint PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE actions (
    id                 bigint PRIMARY KEY,
    brand_id           bigint NOT NULL REFERENCES brands,
    partner_id         bigint NOT NULL REFERENCES partners,
    tracker_id         bigint NOT NULL,
    oid                text NOT NULL,
    event_date         timestamptz NOT NULL,
    currency           char(3) NOT NULL,
    state              text NOT NULL CHECK (state IN ('PENDING', 'APPROVED', 'LOCKED', 'PAID', 'REVERSED')),
    amount             numeric(14, 2) NOT NULL CHECK (amount >= 0),
    payout             numeric(14, 2) NOT NULL CHECK (payout >= 0),
    original_amount    numeric(14, 2) NOT NULL,
    original_payout    numeric(14, 2) NOT NULL,
    -- What an approval of a REVERSED action restores: the amounts just before the reversal.
    reversed_amount    numeric(14, 2),
    reversed_payout    numeric(14, 2),
    customer_status    text CHECK (customer_status IN ('NEW', 'EXISTING')),
    modification_count int NOT NULL DEFAULT 0,
    lock_date          timestamptz,  -- NULL under open-ended locking
    payout_date        timestamptz,
    payout_delayed     boolean NOT NULL DEFAULT false,
    version            int NOT NULL DEFAULT 1,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (brand_id, tracker_id) REFERENCES trackers
) WITH (fillfactor = 80);  -- room on each page for HOT updates: an apply rewrites many rows in place
-- "Several actions with one Oid and tracker: the newest is meant."
CREATE INDEX actions_by_oid ON actions (brand_id, oid, tracker_id, event_date DESC, id DESC);

CREATE TABLE received_files (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id       bigint NOT NULL REFERENCES brands,
    source         text NOT NULL,  -- the source's name, or "cli"
    name           text NOT NULL,
    kind           text,
    size           bigint NOT NULL,
    sha256         bytea NOT NULL,
    status         text NOT NULL CHECK (status IN ('RECEIVED', 'COMPLETED', 'DUPLICATE_FILE', 'QUARANTINED')),
    reason_code    text,
    reason         text,
    duplicate_of   bigint REFERENCES received_files,
    bytes_kept     boolean NOT NULL,  -- false: over the size limit; the bytes stayed at the source
    received_at    timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    rows_total     int,
    rows_applied   int,
    rows_rejected  int,
    rows_duplicate int
);
-- The same bytes are applied at most once per brand, whatever the replicas do.
CREATE UNIQUE INDEX received_files_applied_once ON received_files (brand_id, sha256) WHERE status = 'COMPLETED';
CREATE INDEX received_files_by_brand_time ON received_files (brand_id, received_at);

CREATE TABLE received_file_chunks (
    file_id bigint NOT NULL REFERENCES received_files ON DELETE CASCADE,
    seq     int NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);

-- Every change to an action, forever. The database refuses UPDATE, DELETE and TRUNCATE.
-- No foreign keys: each would cost a lookup per event on the hot path (a third of
-- an apply's time), and nothing can dangle: brands, actions and received files are
-- never deleted, and events are written only in the statements that touch them.
CREATE TABLE ledger_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    brand_id   bigint NOT NULL,
    action_id  bigint NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('CREATE', 'MODIFY', 'REVERSE', 'APPROVE', 'RESTORE', 'RESET')),
    actor      text NOT NULL,  -- who: "cli:alice", "source:acme-sftp"
    file_id    bigint,
    line       int,
    request_id text,
    reason     text,
    note       text,
    old_state  text,
    new_state  text NOT NULL,
    old_amount numeric(14, 2),
    new_amount numeric(14, 2) NOT NULL,
    old_payout numeric(14, 2),
    new_payout numeric(14, 2) NOT NULL
);
-- A row of a file causes at most one event; that event is the row's outcome.
CREATE UNIQUE INDEX ledger_events_by_file_line ON ledger_events (file_id, line) WHERE file_id IS NOT NULL;
CREATE INDEX ledger_events_by_action ON ledger_events (action_id);

-- +goose StatementBegin
CREATE FUNCTION ledger_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_events is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER ledger_events_no_update_delete BEFORE UPDATE OR DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_events_are_append_only();
CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_events_are_append_only();

-- The outcome of every row that caused no ledger event: rejected rows, duplicates,
-- and applied rows that changed nothing (an approval of an approved action).
-- Like ledger_events, written on the hot path and never deleted: no foreign keys.
CREATE TABLE file_rows (
    file_id   bigint NOT NULL,
    line      int NOT NULL,
    outcome   text NOT NULL CHECK (outcome IN ('APPLIED', 'REJECTED', 'DUPLICATE_ROW')),
    code      text,
    message   text,
    action_id bigint,
    operation text,
    PRIMARY KEY (file_id, line)
);

-- One outcome per row: the event a row caused, or its file_rows entry. Both sides
-- have exactly the same column types, so the planner can merge their
-- (file_id, line) indexes in order instead of sorting a large file's outcomes.
CREATE VIEW row_outcomes AS
SELECT file_id, line, 'APPLIED'::text AS outcome, NULL::text AS code, NULL::text AS message,
       action_id, kind AS operation, old_amount, new_amount, old_payout, new_payout
FROM ledger_events WHERE file_id IS NOT NULL
UNION ALL
SELECT file_id, line, outcome, code, message, action_id, operation,
       NULL::numeric(14, 2), NULL::numeric(14, 2), NULL::numeric(14, 2), NULL::numeric(14, 2)
FROM file_rows;

-- RequestId idempotency across files: a key is taken by the row that applied it.
CREATE TABLE request_ids (
    brand_id     bigint NOT NULL,
    request_id   text NOT NULL,
    content_hash text NOT NULL,
    file_id      bigint NOT NULL,
    line         int NOT NULL,
    PRIMARY KEY (brand_id, request_id)
);

-- +goose Down
DROP TABLE request_ids;
DROP VIEW row_outcomes;
DROP TABLE file_rows;
DROP TABLE ledger_events;
DROP FUNCTION ledger_events_are_append_only;
DROP TABLE received_file_chunks;
DROP TABLE received_files;
DROP TABLE actions;
DROP TABLE partners;
DROP TABLE trackers;
DROP TABLE brands;
