package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/processors"
)

// ImportActions loads a brand's tracking export: new actions under the brand's
// contract, each with a CREATE event. A blank Payout is computed from the
// tracker's rule; lock and payout dates come from the contract, counted in
// calendar days in the brand's timezone. An ActionId already in the ledger is not
// loaded again (DUPLICATE_ROW for the brand's own, REJECTED for another brand's).
func (l *Ledger) ImportActions(ctx context.Context, p ApplyParams,
	next func() (processors.ActionRecord, error)) (Summary, error) {
	stage := func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createActionStage); err != nil {
			return interpretError(err)
		}
		return copyRows(ctx, tx, "COPY stage FROM STDIN", func(c *copyWriter) error {
			return eachRow(next, func(a processors.ActionRecord) {
				c.int(int64(a.Line))
				c.intOrNull(a.ActionID)
				c.intOrNull(a.PartnerID)
				c.intOrNull(a.TrackerID)
				c.textOrNull(a.Oid)
				c.time(a.EventDate)
				c.text(a.Amount.String())
				c.textOrNull(a.Currency)
				c.amount(a.Payout, a.HasPayout)
				c.textOrNull(a.State)
				c.rowError(a.Err)
				c.endRow()
			})
		})
	}
	process := func(tx pgx.Tx, brand, file int64, t *tally) error {
		err := runSteps(ctx, tx,
			step{"check actions", checkImport, []any{brand}},
			step{"insert actions", insertImport, []any{brand, file, p.Actor}})
		if err != nil {
			return err
		}
		return t.add(ctx, tx, workRowCounts)
	}
	sum, err := l.applyFile(ctx, p, string(processors.Actions), stage, process)
	if err != nil {
		return Summary{}, fmt.Errorf("ledger: import actions: %w", err)
	}
	return sum, nil
}

const createActionStage = `
CREATE TEMP TABLE stage (
    line       int NOT NULL,
    action_id  bigint,
    partner_id bigint,
    tracker_id bigint,
    oid        text,
    event_date timestamptz,
    amount     numeric(14, 2),
    currency   text,
    payout     numeric(14, 2),
    state      text,
    code       text,
    message    text
) ON COMMIT DROP`

const checkImport = `
CREATE TEMP TABLE work ON COMMIT DROP AS
SELECT s.*,
    -- A partner's own terms (partner_contracts, partner_payouts) replace the brand's.
    CASE WHEN pp.tracker_id IS NULL THEN t.payout_percent ELSE pp.payout_percent END AS payout_percent,
    CASE WHEN pp.tracker_id IS NULL THEN t.payout_fixed ELSE pp.payout_fixed END AS payout_fixed,
    CASE
        WHEN s.code IS NOT NULL THEN 'REJECTED'
        WHEN s.action_id BETWEEN own.seqmin AND own.seqmax THEN 'REJECTED'
        WHEN t.id IS NULL OR s.currency <> b.currency THEN 'REJECTED'
        WHEN e.id IS NOT NULL AND e.brand_id <> $1 THEN 'REJECTED'
        WHEN e.id IS NOT NULL OR s.first_line <> s.line THEN 'DUPLICATE_ROW'
    END AS outcome,
    CASE
        WHEN s.code IS NOT NULL THEN s.code
        WHEN s.action_id BETWEEN own.seqmin AND own.seqmax THEN 'INVALID_ACTION_ID'
        WHEN t.id IS NULL THEN 'UNKNOWN_TRACKER'
        WHEN s.currency <> b.currency THEN 'CURRENCY_MISMATCH'
        WHEN e.id IS NOT NULL OR s.first_line <> s.line THEN 'ACTION_EXISTS'
    END AS verdict,
    CASE
        WHEN s.code IS NOT NULL THEN s.message
        WHEN s.action_id BETWEEN own.seqmin AND own.seqmax THEN 'ActionId ' || s.action_id
            || ' is in the range the ledger numbers the actions it creates in (' || own.seqmin || ' to ' || own.seqmax || ')'
        WHEN t.id IS NULL THEN 'ActionTrackerId ' || s.tracker_id || ' is not a tracker of this program'
        WHEN s.currency <> b.currency THEN 'Currency ' || s.currency || ' differs from the program''s currency ' || b.currency
        WHEN e.id IS NOT NULL AND e.brand_id <> $1 THEN 'ActionId ' || s.action_id || ' is already in use'
        WHEN e.id IS NOT NULL THEN 'Action ' || s.action_id || ' is already in the ledger; changes go through an update file'
        WHEN s.first_line <> s.line THEN 'ActionId ' || s.action_id || ' already appears on line ' || s.first_line
    END AS verdict_message,
    b.timezone,
    CASE WHEN pc.partner_id IS NULL THEN b.locking_days ELSE pc.locking_days END AS locking_days,
    coalesce(pc.payout_delay_days, b.payout_delay_days) AS payout_delay_days
FROM (
    SELECT st.*, CASE WHEN st.code IS NULL
        THEN first_value(st.line) OVER (PARTITION BY st.code IS NULL, st.action_id ORDER BY st.line) END AS first_line
    FROM stage st
) s
JOIN brands b ON b.id = $1
-- The ids the ledger gives the actions it creates: the bounds of their sequence.
CROSS JOIN (SELECT seqmin, seqmax FROM pg_sequence WHERE seqrelid = 'action_ids'::regclass) own
LEFT JOIN trackers t ON t.brand_id = $1 AND t.id = s.tracker_id
LEFT JOIN actions e ON e.id = s.action_id
LEFT JOIN partner_contracts pc ON pc.brand_id = $1 AND pc.partner_id = s.partner_id
LEFT JOIN partner_payouts pp ON pp.brand_id = $1 AND pp.partner_id = s.partner_id AND pp.tracker_id = s.tracker_id`

const insertImport = `
WITH ok AS (
    SELECT w.*,
        coalesce(w.payout, CASE WHEN w.payout_percent IS NOT NULL
            THEN round(w.amount * w.payout_percent / 100, 2) ELSE w.payout_fixed END) AS contract_payout,
        -- Under open-ended locking a PENDING action has no dates until it locks; one
        -- tracked as already LOCKED (or PAID) locked, as far as the ledger knows, now,
        -- and is paid the payout delay later.
        CASE WHEN w.locking_days IS NOT NULL THEN
            ((w.event_date AT TIME ZONE w.timezone) + make_interval(days => w.locking_days)) AT TIME ZONE w.timezone
            WHEN w.state IN ('LOCKED', 'PAID') THEN now()
        END AS lock_date,
        CASE WHEN w.locking_days IS NOT NULL THEN
            ((w.event_date AT TIME ZONE w.timezone) + make_interval(days => w.locking_days + w.payout_delay_days)) AT TIME ZONE w.timezone
            WHEN w.state IN ('LOCKED', 'PAID') THEN
            ((now() AT TIME ZONE w.timezone) + make_interval(days => w.payout_delay_days)) AT TIME ZONE w.timezone
        END AS payout_date,
        coalesce(w.state, 'PENDING') AS new_state
    FROM work w WHERE w.outcome IS NULL
),
partners_added AS (
    INSERT INTO partners (id) SELECT DISTINCT partner_id FROM ok ON CONFLICT DO NOTHING
),
added AS (
    INSERT INTO actions (id, brand_id, partner_id, tracker_id, oid, event_date, currency, state,
        amount, payout, original_amount, original_payout, reversed_amount, reversed_payout,
        lock_date, payout_date)
    SELECT action_id, $1, partner_id, tracker_id, oid, event_date, currency, new_state,
        CASE WHEN new_state = 'REVERSED' THEN 0 ELSE amount END,
        CASE WHEN new_state = 'REVERSED' THEN 0 ELSE contract_payout END,
        amount, contract_payout,
        CASE WHEN new_state = 'REVERSED' THEN amount END,
        CASE WHEN new_state = 'REVERSED' THEN contract_payout END,
        lock_date, payout_date
    FROM ok
    RETURNING id
),
events AS (
    INSERT INTO ledger_events (brand_id, action_id, kind, actor, file_id, line, new_state, new_amount, new_payout)
    SELECT $1, ok.action_id, 'CREATE', $3, $2, ok.line, ok.new_state,
        CASE WHEN ok.new_state = 'REVERSED' THEN 0 ELSE ok.amount END,
        CASE WHEN ok.new_state = 'REVERSED' THEN 0 ELSE ok.contract_payout END
    FROM ok JOIN added ON added.id = ok.action_id
)
INSERT INTO file_rows (file_id, line, outcome, code, message, action_id, operation)
SELECT $2, w.line, w.outcome, w.verdict, w.verdict_message,
    CASE WHEN w.outcome = 'DUPLICATE_ROW' AND w.first_line = w.line THEN w.action_id END, 'CREATE'
FROM work w WHERE w.outcome IS NOT NULL`
