-- Partners' action inquiries and the brands' resolutions of them (SPEC §3.2), the
-- brands' inquiry terms, per-partner contracts, and the ids of actions the ledger
-- creates itself.

-- +goose Up
ALTER TABLE brands
    ADD COLUMN inquiries_accept       boolean NOT NULL DEFAULT false,
    -- The window after the order date in which an inquiry may come, added to the
    -- order date's wall-clock time in the brand's timezone.
    ADD COLUMN inquiry_window_min     interval NOT NULL DEFAULT '24 hours',
    ADD COLUMN inquiry_window_max     interval NOT NULL DEFAULT '3 months';

-- A partner's own terms with a brand (config: contract.partners). A row replaces
-- the brand's locking terms for that partner's actions; unset fields were filled
-- from the brand's contract when the config was synced.
CREATE TABLE partner_contracts (
    brand_id          bigint NOT NULL REFERENCES brands,
    partner_id        bigint NOT NULL,
    locking_days      int CHECK (locking_days >= 0),  -- NULL: open-ended locking
    payout_delay_days int NOT NULL CHECK (payout_delay_days >= 0),
    PRIMARY KEY (brand_id, partner_id)
);

-- A partner's own payout rule for one tracker, replacing the tracker's.
CREATE TABLE partner_payouts (
    brand_id       bigint NOT NULL,
    partner_id     bigint NOT NULL,
    tracker_id     bigint NOT NULL,
    payout_percent numeric(7, 4) CHECK (payout_percent BETWEEN 0 AND 100),
    payout_fixed   numeric(14, 2) CHECK (payout_fixed >= 0),
    PRIMARY KEY (brand_id, partner_id, tracker_id),
    FOREIGN KEY (brand_id, tracker_id) REFERENCES trackers,
    CHECK ((payout_percent IS NULL) <> (payout_fixed IS NULL))
);

-- Actions the ledger creates itself (a VALID inquiry) take ids from 2^62 up, a
-- range brands' tracking exports may not use, so the two never collide.
CREATE SEQUENCE action_ids AS bigint START 4611686018427387904 MINVALUE 4611686018427387904;

CREATE TABLE inquiries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id         bigint NOT NULL REFERENCES brands,
    inquiry_id       text NOT NULL,  -- the "Inquiry Id" of the files
    partner_id       bigint NOT NULL,
    oid              text NOT NULL,
    type             text NOT NULL CHECK (type IN ('UNTRACKED', 'INCORRECT', 'DECLINED')),
    tracker_id       bigint,
    transaction_date timestamptz NOT NULL,
    sale_amount      numeric(14, 2),
    expected_payout  numeric(14, 2),
    currency         char(3),
    customer_status  text,
    note             text,
    submitted_at     timestamptz NOT NULL,
    file_id          bigint NOT NULL,  -- the import that brought it
    line             int NOT NULL,
    status           text NOT NULL DEFAULT 'NEW' CHECK (status IN ('NEW', 'INCOMPLETE', 'VALID', 'DECLINED')),
    resolution_reason text,
    resolution_notes text,
    customer_id      text,
    promo_code       text,
    action_id        bigint,  -- the action a VALID resolution created
    resolved_at      timestamptz,
    resolved_by      text,    -- the actor: "source:acme-sftp", "cli:alice", "auto-resolve"
    resolved_file_id bigint,  -- the resolution file and line, NULL for auto-resolution
    resolved_line    int,
    UNIQUE (brand_id, inquiry_id),
    CHECK ((status = 'VALID') = (action_id IS NOT NULL)),
    CHECK (status <> 'DECLINED' OR resolution_reason IS NOT NULL)
);
-- "The same partner already has an open inquiry for that order": at most one, by construction.
CREATE UNIQUE INDEX inquiries_one_open ON inquiries (brand_id, partner_id, oid) WHERE status IN ('NEW', 'INCOMPLETE');

-- +goose Down
DROP TABLE inquiries;
DROP SEQUENCE action_ids;
DROP TABLE partner_payouts;
DROP TABLE partner_contracts;
ALTER TABLE brands
    DROP COLUMN inquiry_window_max,
    DROP COLUMN inquiry_window_min,
    DROP COLUMN inquiries_accept;
