-- Inquiries, the partner's side (issue 12): automatic approval rules and the
-- Auto Approval Date, a resolution deadline, the completion of an INCOMPLETE
-- inquiry, the append-only history of every status change, and the outbox that
-- tells partners about each change by mail.

-- +goose Up
ALTER TABLE brands
    -- How long a brand may take to resolve an inquiry; open ones older than this
    -- are flagged in the exports. Added to the submission's wall-clock time in
    -- the brand's timezone, like the window.
    ADD COLUMN inquiry_resolution_deadline interval NOT NULL DEFAULT '84 days',
    -- What the open inquiries' Auto Approval Dates were last computed from (the
    -- rules, the trackers, the partners' payouts, the timezone): SyncBrands
    -- recomputes them when the config says something else.
    ADD COLUMN auto_approval_terms jsonb;

-- The address a partner is told about its inquiries at (config:
-- contract.partners[].contact); NULL: it is not mailed.
ALTER TABLE partner_contracts ADD COLUMN contact text;

-- Automatic approval rules (config: contract.inquiries.auto_approve, and a
-- partner's own in contract.partners[].inquiries.auto_approve, which replaces
-- the brand's). A copy of the config, replaced on every sync.
CREATE TABLE auto_approval_rules (
    brand_id    bigint NOT NULL REFERENCES brands,
    partner_id  bigint NOT NULL,    -- 0: the brand's rule; else that partner's own
    enabled     boolean NOT NULL,   -- false: the partner is exempt (off: true)
    after       interval,           -- after the submission, on the brand's wall clock
    types       text[] NOT NULL,    -- inquiry types the rule approves
    max_payout  numeric(14, 2),     -- an inquiry paying more waits for the brand
    monthly_cap numeric(14, 2),     -- auto-approved payouts per partner per calendar month
    PRIMARY KEY (brand_id, partner_id),
    CHECK (enabled = (after IS NOT NULL))
);

ALTER TABLE inquiries
    -- The payout of a VALID resolution (the created action's payout then).
    ADD COLUMN final_payout    numeric(14, 2),
    -- When a NEW inquiry is approved automatically if the brand has not
    -- resolved it; NULL when no rule applies to it. Kept on the inquiries the
    -- rule approved.
    ADD COLUMN auto_approve_at timestamptz,
    -- The partner's last completion of the inquiry after the brand found it INCOMPLETE.
    ADD COLUMN resubmitted_at  timestamptz;
UPDATE inquiries i SET final_payout = e.new_payout
FROM ledger_events e WHERE e.action_id = i.action_id AND e.kind = 'CREATE';

-- The due inquiries of a brand, for the auto-approval job.
CREATE INDEX inquiries_auto_approve_due ON inquiries (brand_id, auto_approve_at)
    WHERE status = 'NEW' AND auto_approve_at IS NOT NULL;
-- What the auto-approval paid a brand's partners in a month (the monthly cap).
CREATE INDEX inquiries_auto_approved ON inquiries (brand_id, resolved_at) WHERE resolved_by = 'auto-approval';

-- For each inquiry under an automatic approval rule: the rule (the partner's
-- own, else the brand's), the payout the approval would give (the Expected
-- Payout, else the contract's, exactly as a VALID resolution computes it), and
-- the Auto Approval Date: the rule's delay after the submission (or the
-- completion), or NULL when the rule does not approve it (another type, no
-- tracker, no payout, over max_payout, not NEW, the partner exempt).
CREATE VIEW inquiry_auto_approval AS
SELECT i.id, r.after, r.max_payout, r.monthly_cap, x.payout,
    CASE WHEN r.enabled AND i.status = 'NEW' AND i.type = ANY (r.types) AND t.id IS NOT NULL
            AND x.payout IS NOT NULL AND (r.max_payout IS NULL OR x.payout <= r.max_payout)
        THEN ((coalesce(i.resubmitted_at, i.submitted_at) AT TIME ZONE b.timezone) + r.after) AT TIME ZONE b.timezone
    END AS due_at
FROM inquiries i
JOIN brands b ON b.id = i.brand_id
CROSS JOIN LATERAL (
    SELECT * FROM auto_approval_rules r
    WHERE r.brand_id = i.brand_id AND r.partner_id IN (0, i.partner_id)
    ORDER BY r.partner_id DESC LIMIT 1
) r
LEFT JOIN trackers t ON t.brand_id = i.brand_id AND t.id = i.tracker_id
LEFT JOIN partner_payouts pp ON pp.brand_id = i.brand_id AND pp.partner_id = i.partner_id
    AND pp.tracker_id = i.tracker_id
CROSS JOIN LATERAL (SELECT coalesce(i.expected_payout, CASE
        WHEN pp.tracker_id IS NOT NULL AND pp.payout_percent IS NOT NULL THEN round(i.sale_amount * pp.payout_percent / 100, 2)
        WHEN pp.tracker_id IS NOT NULL THEN pp.payout_fixed
        WHEN t.payout_percent IS NOT NULL THEN round(i.sale_amount * t.payout_percent / 100, 2)
        ELSE t.payout_fixed
    END) AS payout) x;

-- Every status change of an inquiry, forever: its submission (old_status NULL),
-- a partner's completion of an INCOMPLETE one (INCOMPLETE -> NEW), and each
-- resolution, by a brand's file, auto-resolution or auto-approval. Written in the
-- statement that changes the inquiry. The database refuses UPDATE, DELETE and
-- TRUNCATE, as for ledger_events.
CREATE TABLE inquiry_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,  -- the clock of the change (the file's or the job's)
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    brand_id     bigint NOT NULL,
    inquiry      bigint NOT NULL,       -- inquiries.id
    partner_id   bigint NOT NULL,
    old_status   text,                  -- NULL: the submission
    new_status   text NOT NULL CHECK (new_status IN ('NEW', 'INCOMPLETE', 'VALID', 'DECLINED')),
    actor        text NOT NULL,         -- "source:acme-sftp", "cli:alice", "auto-approval", "auto-resolve"
    file_id      bigint,                -- the file and line of the change; NULL for the jobs
    line         int,
    reason       text,                  -- DECLINED: the decline reason
    notes        text,                  -- the brand's Resolution Notes, or the partner's Note
    final_payout numeric(14, 2),        -- VALID: the created action's payout
    action_id    bigint                 -- VALID: the created action
);
CREATE INDEX inquiry_history_by_inquiry ON inquiry_history (inquiry, id);
-- A partner's status file: what changed since a moment.
CREATE INDEX inquiry_history_by_partner ON inquiry_history (partner_id, recorded_at);

-- +goose StatementBegin
CREATE FUNCTION refuse_change_of_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER inquiry_history_no_update_delete BEFORE UPDATE OR DELETE ON inquiry_history
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_append_only();
CREATE TRIGGER inquiry_history_no_truncate BEFORE TRUNCATE ON inquiry_history
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_append_only();

-- The outbox: one notice per history row of a partner with a contact, queued by
-- the database in the statement that writes the history row, so a change and the
-- mail telling it commit together or not at all. The mail job claims a notice by
-- locking its row (FOR UPDATE SKIP LOCKED) for as long as it sends it, and marks
-- it SENT in that same transaction (ledger/notices.go).
CREATE TABLE inquiry_notices (
    history_id      bigint PRIMARY KEY,  -- the inquiry_history row told
    brand_id        bigint NOT NULL,
    recipient       text NOT NULL,       -- the partner's contact when the change was made
    state           text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    sent_at         timestamptz,
    CHECK ((state = 'SENT') = (sent_at IS NOT NULL))
);
-- The notices to send, oldest change first (a partner hears of its changes in
-- their order); only those waiting to be retried are skipped.
CREATE INDEX inquiry_notices_pending ON inquiry_notices (history_id) WHERE state = 'PENDING';

-- +goose StatementBegin
CREATE FUNCTION queue_inquiry_notices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inquiry_notices (history_id, brand_id, recipient)
    SELECT h.id, h.brand_id, pc.contact
    FROM written h
    JOIN partner_contracts pc ON pc.brand_id = h.brand_id AND pc.partner_id = h.partner_id
    WHERE pc.contact IS NOT NULL;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER inquiry_history_queues_notices AFTER INSERT ON inquiry_history
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION queue_inquiry_notices();

-- The inquiries already in the ledger get the history that can be told from
-- them: their submission, and their resolution (from NEW: an INCOMPLETE before
-- it was not kept). No contact is configured yet, so nobody is mailed.
INSERT INTO inquiry_history (at, recorded_at, brand_id, inquiry, partner_id, old_status, new_status, actor, file_id, line, notes)
SELECT submitted_at, submitted_at, brand_id, id, partner_id, NULL, 'NEW', 'import', file_id, line, note
FROM inquiries ORDER BY id;
INSERT INTO inquiry_history (at, recorded_at, brand_id, inquiry, partner_id, old_status, new_status, actor, file_id, line,
    reason, notes, final_payout, action_id)
SELECT resolved_at, resolved_at, brand_id, id, partner_id, 'NEW', status, resolved_by, resolved_file_id, resolved_line,
    resolution_reason, resolution_notes, final_payout, action_id
FROM inquiries WHERE resolved_at IS NOT NULL ORDER BY resolved_at, id;

-- +goose Down
DROP TRIGGER inquiry_history_queues_notices ON inquiry_history;
DROP FUNCTION queue_inquiry_notices;
DROP TABLE inquiry_notices;
DROP TABLE inquiry_history;
DROP FUNCTION refuse_change_of_append_only;
DROP VIEW inquiry_auto_approval;
DROP INDEX inquiries_auto_approved;
DROP INDEX inquiries_auto_approve_due;
ALTER TABLE inquiries
    DROP COLUMN resubmitted_at,
    DROP COLUMN auto_approve_at,
    DROP COLUMN final_payout;
DROP TABLE auto_approval_rules;
ALTER TABLE partner_contracts DROP COLUMN contact;
ALTER TABLE brands
    DROP COLUMN auto_approval_terms,
    DROP COLUMN inquiry_resolution_deadline;
