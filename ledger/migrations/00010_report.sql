-- The daily processing report (SPEC §7): what it reads must stay fast on a
-- large ledger (a day of 1,000 files and 5,000,000 rows), and its mail must go
-- out once per day whatever the replicas do.

-- +goose Up

-- What a file's rows came to, by outcome, code and operation, with the sale
-- amount and payout they changed: written with the file's COMPLETED mark, in
-- its transaction, from its outcomes. The report sums a few rows per file
-- instead of every row of the day. Files completed before this migration
-- have none; the report reads their outcomes instead.
CREATE TABLE file_tallies (
    file_id            bigint NOT NULL REFERENCES received_files,
    outcome            text NOT NULL,
    code               text NOT NULL,  -- '' for none
    operation          text NOT NULL,  -- '' for none (a row rejected before it had one)
    rows               int NOT NULL CHECK (rows > 0),
    sale_amount_change numeric(20, 2) NOT NULL,  -- sum of new - old amount of the rows' events
    payout_change      numeric(20, 2) NOT NULL,
    PRIMARY KEY (file_id, outcome, code, operation)
);

-- The files of a day, of every brand: the report and its 14-day trend.
CREATE INDEX received_files_by_time ON received_files (received_at);

-- What the events that belong to no file (LOCK, PAY, PAYOUT_RELEASED,
-- DEPOSIT) came to, one row per kind, brand and transaction, written with
-- them: a lifecycle run that locks and pays a million actions adds two rows
-- here, and the report sums a day's few hundred. at is the transaction's
-- time, as the events' own. The events already in the ledger are tallied
-- here once.
CREATE TABLE event_tallies (
    at            timestamptz NOT NULL DEFAULT now(),
    brand_id      bigint NOT NULL REFERENCES brands,
    kind          text NOT NULL,
    events        int NOT NULL CHECK (events > 0),
    balance_delta numeric(20, 2) NOT NULL  -- sum of the events' balance_delta, 0 for none
);
CREATE INDEX event_tallies_by_time ON event_tallies (at);
INSERT INTO event_tallies (at, brand_id, kind, events, balance_delta)
SELECT at, brand_id, kind, count(*), coalesce(sum(balance_delta), 0)
FROM ledger_events WHERE file_id IS NULL
GROUP BY 1, 2, 3;

-- Inquiries resolved in a day, and the open ones oldest first.
CREATE INDEX inquiries_by_resolved_at ON inquiries (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX inquiries_open_by_age ON inquiries (brand_id, submitted_at) WHERE status IN ('NEW', 'INCOMPLETE');

-- One mailed report per day and zone. A replica sends while it holds the
-- day's advisory lock, in the transaction that marks the row SENT; see
-- ledger.DeliverReportOnce for why that is as close to once as mail allows.
CREATE TABLE report_deliveries (
    day        date NOT NULL,
    timezone   text NOT NULL,
    state      text NOT NULL CHECK (state IN ('FAILED', 'SENT')),
    attempts   int NOT NULL DEFAULT 0,
    recipients text[] NOT NULL DEFAULT '{}',
    message_id text,
    last_error text,
    sent_at    timestamptz,
    sent_by    text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, timezone),
    CHECK ((state = 'SENT') = (sent_at IS NOT NULL))
);

-- +goose Down
DROP TABLE report_deliveries;
DROP INDEX inquiries_open_by_age;
DROP INDEX inquiries_by_resolved_at;
DROP TABLE event_tallies;
DROP INDEX received_files_by_time;
DROP TABLE file_tallies;
