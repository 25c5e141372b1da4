package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// ApplyActionUpdates applies an action-update file (SPEC §3.1) to the brand's
// actions: all of it or, on any error, none of it. next yields the parsed rows in
// file order; an error from it other than io.EOF (a *processors.FileError, say)
// aborts the apply and is returned unchanged, so the caller can quarantine the file.
//
// It is set-based: the rows are staged with one COPY, resolved to actions with one
// join, and applied in rounds of statements that each update many actions — round
// k takes every action's k-th row, so rows of one action apply in file order.
func (l *Ledger) ApplyActionUpdates(ctx context.Context, p ApplyParams,
	next func() (processors.ActionUpdate, error)) (Summary, error) {
	stage := func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createUpdateStage); err != nil {
			return interpretError(err)
		}
		return copyRows(ctx, tx, copyUpdateStage, func(c *copyWriter) error {
			return eachRow(next, func(u processors.ActionUpdate) {
				c.int(int64(u.Line))
				c.intOrNull(u.ActionID)
				c.textOrNull(u.Oid)
				c.intOrNull(u.TrackerID)
				c.textOrNull(string(u.Operation))
				c.bool(u.ReverseIfZero)
				c.amount(u.Amount, u.HasAmount)
				c.textOrNull(u.Currency)
				c.textOrNull(u.CustomerStatus)
				c.textOrNull(u.Reason)
				c.textOrNull(u.RequestID)
				c.textOrNull(u.Note)
				c.rowError(u.Err)
				c.endRow()
			})
		})
	}
	process := func(tx pgx.Tx, brand, file int64, t *tally) error {
		step := time.Now()
		if _, err := tx.Exec(ctx, resolveUpdates, brand); err != nil {
			return fmt.Errorf("resolve actions: %w", interpretError(err))
		}
		// Fresh statistics of the file's rows, or the planner guesses a handful and
		// joins a million of them to their actions one index probe at a time (and,
		// for a small file, hashes the whole ledger).
		if _, err := tx.Exec(ctx, "ANALYZE work"); err != nil {
			return interpretError(err)
		}
		l.logger.DebugContext(ctx, "rows resolved to actions", "took", time.Since(step))
		step = time.Now()
		if _, err := tx.Exec(ctx, checkRequestIDs, brand); err != nil {
			return fmt.Errorf("check request ids: %w", interpretError(err))
		}
		var rounds int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(rnd), 0) FROM work WHERE outcome IS NULL").Scan(&rounds); err != nil {
			return interpretError(err)
		}
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE seen (aid bigint, op text, PRIMARY KEY (aid, op)) ON COMMIT DROP"); err != nil {
			return interpretError(err)
		}
		// Rounds after the first take the few rows of actions named several
		// times: found by index, not by reading every row of the file per round.
		if rounds > 2 {
			if _, err := tx.Exec(ctx, "CREATE INDEX ON work (rnd)"); err != nil {
				return interpretError(err)
			}
		}
		for k := 1; k <= rounds; k++ {
			step = time.Now()
			if err := applyRoundOnce(ctx, tx, t, k, brand, file, p.Actor); err != nil {
				return fmt.Errorf("apply round %d: %w", k, err)
			}
			l.logger.DebugContext(ctx, "round applied", "round", k, "took", time.Since(step))
		}
		return t.add(ctx, tx, `
			WITH settled AS (
				INSERT INTO file_rows (file_id, line, outcome, code, message, action_id, operation)
				SELECT $1, line, outcome, code, message, aid, op FROM work WHERE outcome IS NOT NULL
				RETURNING outcome, code
			)
			SELECT outcome, coalesce(code, ''), count(*) FROM settled GROUP BY 1, 2`, file)
	}
	sum, err := l.applyFile(ctx, p, string(processors.ActionUpdates), stage, process)
	if err != nil {
		return Summary{}, fmt.Errorf("ledger: apply action updates: %w", err)
	}
	return sum, nil
}

// applyRoundOnce runs one round and counts its outcomes, checking that every
// change it decided reached its action.
func applyRoundOnce(ctx context.Context, tx pgx.Tx, t *tally, k int, brand, file int64, actor string) error {
	rows, err := tx.Query(ctx, applyRound, k, brand, file, actor)
	if err != nil {
		return interpretError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var o, code string
		var n, changes, updated int
		if err := rows.Scan(&o, &code, &n, &changes, &updated); err != nil {
			return err
		}
		if changes != updated {
			return fmt.Errorf("%w: %d changes decided but %d actions updated: an action changed under the apply",
				ErrTransient, changes, updated)
		}
		if err := t.count(outcome.Outcome(o), outcome.Code(code), n); err != nil {
			return err
		}
	}
	return interpretError(rows.Err())
}

const createUpdateStage = `
CREATE TEMP TABLE stage (
    line            int NOT NULL,
    ref_action_id   bigint,
    oid             text,
    tracker_id      bigint,
    op              text,
    reverse_if_zero boolean NOT NULL,
    amount          numeric(14, 2),
    currency        text,
    customer_status text,
    reason          text,
    request_id      text,
    note            text,
    code            text,
    message         text
) ON COMMIT DROP`

const copyUpdateStage = `COPY stage FROM STDIN`

// resolveUpdates finds the action of each row named by Oid (the newest of the
// brand's actions with that Oid and tracker) and numbers the rows of each action
// (rnd) for the rounds that apply them in order; only actions with several rows
// need numbering, and most have one. Rows named by ActionId are looked up by the
// round itself, among the brand's own actions only: a row naming another brand's
// action is ACTION_NOT_FOUND, exactly like one naming no action.
const resolveUpdates = `
CREATE TEMP TABLE work ON COMMIT DROP AS
WITH by_oid AS (
    -- One index probe per Oid row: the cost follows the file, not the ledger.
    SELECT s.line, x.id
    FROM stage s
    CROSS JOIN LATERAL (
        SELECT a.id FROM actions a
        WHERE a.brand_id = $1 AND a.oid = s.oid AND a.tracker_id = s.tracker_id
        ORDER BY a.event_date DESC, a.id DESC LIMIT 1
    ) x
    WHERE s.code IS NULL AND s.ref_action_id IS NULL
),
resolved AS (
    SELECT s.*, coalesce(s.ref_action_id, o.id) AS aid
    FROM stage s
    LEFT JOIN by_oid o ON o.line = s.line
),
multi AS (
    SELECT aid FROM resolved WHERE code IS NULL AND aid IS NOT NULL GROUP BY aid HAVING count(*) > 1
),
-- An ActionId named by several rows that is none of the brand's actions: all its
-- rows are ACTION_NOT_FOUND here, not one round each (a placeholder ActionId on
-- 4,000 rows would be 4,000 rounds).
missing AS (
    SELECT m.aid FROM multi m
    WHERE NOT EXISTS (SELECT 1 FROM actions a WHERE a.id = m.aid AND a.brand_id = $1)
),
numbered AS (
    SELECT r.line, row_number() OVER (PARTITION BY r.aid ORDER BY r.line) AS rnd
    FROM resolved r JOIN multi m ON m.aid = r.aid
    WHERE r.code IS NULL AND NOT EXISTS (SELECT 1 FROM missing x WHERE x.aid = r.aid)
)
SELECT r.line, r.op, r.reverse_if_zero, r.amount, r.currency, r.customer_status, r.reason,
    r.request_id, r.note,
    -- A row rejected by the parser names no action in its outcome: it was never
    -- resolved; nor does a row naming an action that does not exist.
    CASE WHEN r.code IS NULL AND x.aid IS NULL THEN r.aid END AS aid,
    CASE WHEN r.request_id IS NOT NULL THEN md5(concat_ws('|', r.ref_action_id, r.oid, r.tracker_id,
        r.op, r.reverse_if_zero, r.amount, r.currency, r.customer_status, r.reason, r.note)) END AS req_hash,
    CASE
        WHEN r.code IS NOT NULL THEN r.code
        WHEN r.aid IS NULL OR x.aid IS NOT NULL THEN 'ACTION_NOT_FOUND'
    END AS code,
    CASE
        WHEN r.code IS NOT NULL THEN r.message
        WHEN r.aid IS NULL THEN 'No action with Oid ' || r.oid || ' and ActionTrackerId ' || r.tracker_id || ' in this program'
        -- The round's words for an ActionId it cannot find.
        WHEN x.aid IS NOT NULL THEN 'No action ' || r.aid || ' in this program'
    END AS message,
    CASE WHEN r.code IS NOT NULL OR r.aid IS NULL OR x.aid IS NOT NULL THEN 'REJECTED' END AS outcome,
    CASE WHEN r.code IS NULL AND r.aid IS NOT NULL AND x.aid IS NULL THEN coalesce(n.rnd, 1) END AS rnd,
    n.line IS NOT NULL AS multi
FROM resolved r
LEFT JOIN numbered n ON n.line = r.line
LEFT JOIN missing x ON x.aid = r.aid AND r.code IS NULL`

// checkRequestIDs settles RequestIds before anything applies: a key already applied
// (by an earlier file, or an earlier row of this one) with the same content makes
// the row a duplicate; with other content, a conflict.
const checkRequestIDs = `
UPDATE work w SET
    outcome = CASE WHEN d.same THEN 'DUPLICATE_ROW' ELSE 'REJECTED' END,
    code = CASE WHEN d.same THEN 'DUPLICATE_REQUEST_ID' ELSE 'REQUEST_ID_CONFLICT' END,
    message = CASE
        WHEN d.earlier_file IS NOT NULL AND d.same THEN 'RequestId ' || w.request_id || ' was applied by file ' || d.earlier_file || ', line ' || d.earlier_line
        WHEN d.earlier_file IS NOT NULL THEN 'RequestId ' || w.request_id || ' was applied by file ' || d.earlier_file || ', line ' || d.earlier_line || ' with other content'
        WHEN d.same THEN 'RequestId ' || w.request_id || ' repeats line ' || d.first_line
        ELSE 'RequestId ' || w.request_id || ' is used by line ' || d.first_line || ' with other content'
    END
FROM (
    SELECT k.line, r.file_id AS earlier_file, r.line AS earlier_line, k.first_line,
        coalesce(r.content_hash, k.first_hash) = k.req_hash AS same
    FROM (
        SELECT line, request_id, req_hash,
            first_value(line) OVER (PARTITION BY request_id ORDER BY line) AS first_line,
            first_value(req_hash) OVER (PARTITION BY request_id ORDER BY line) AS first_hash
        FROM work WHERE request_id IS NOT NULL AND outcome IS NULL
    ) k
    LEFT JOIN request_ids r ON r.brand_id = $1 AND r.request_id = k.request_id
    WHERE r.request_id IS NOT NULL OR k.line <> k.first_line
) d
WHERE w.line = d.line`

// applyRound applies the k-th row of every action ($1 = k). It decides each
// row's fate from the action's current state and contract (SPEC §2, §3.1), then in
// the same statement updates the actions, appends one ledger event per change,
// records RequestIds, and writes the outcome of every row that changed nothing.
// seen remembers the (action, operation) pairs of actions with several rows, for
// DUPLICATE_ROW: the first row for a pair wins.
const applyRound = `
WITH cur AS (
    SELECT w.line, w.aid, w.amount AS row_amount, w.currency AS row_currency,
        w.customer_status AS row_customer_status, w.reason, w.request_id, w.req_hash, w.note, w.multi,
        CASE WHEN w.op = 'MODIFY' AND w.reverse_if_zero AND a.amount > 0 THEN 'REVERSE' ELSE w.op END AS op,
        a.ctid AS action_ctid, a.state, a.amount, a.payout, a.currency, a.original_amount, a.original_payout,
        a.reversed_amount, a.reversed_payout, a.modification_count, t.kind AS tracker_kind,
        -- A partner's own payout rule for the tracker replaces the tracker's.
        CASE WHEN pp.tracker_id IS NULL THEN t.payout_percent ELSE pp.payout_percent END AS payout_percent
    FROM work w
    LEFT JOIN actions a ON a.id = w.aid AND a.brand_id = $2
    LEFT JOIN trackers t ON t.brand_id = a.brand_id AND t.id = a.tracker_id
    LEFT JOIN partner_payouts pp ON pp.brand_id = a.brand_id AND pp.partner_id = a.partner_id AND pp.tracker_id = a.tracker_id
    WHERE w.rnd = $1 AND w.outcome IS NULL
),
checked AS (
    SELECT c.*,
        CASE
            WHEN c.state IS NULL THEN 'ACTION_NOT_FOUND'
            WHEN s.aid IS NOT NULL THEN 'DUPLICATE_OPERATION'
            WHEN c.tracker_kind = 'CPC' AND c.op IN ('MODIFY', 'REVERSE') THEN 'CPC_NOT_REVERSIBLE'
            WHEN c.state IN ('LOCKED', 'PAID') THEN 'ACTION_LOCKED'
            WHEN c.row_currency IS NOT NULL AND c.row_currency <> c.currency THEN 'CURRENCY_MISMATCH'
            WHEN c.op = 'REVERSE' AND c.row_customer_status IS NOT NULL THEN 'CUSTOMER_STATUS_NOT_ALLOWED'
            WHEN c.op IN ('MODIFY', 'REVERSE') AND c.state = 'REVERSED' THEN 'ACTION_REVERSED'
            WHEN c.op = 'MODIFY' AND c.modification_count >= 1000 THEN 'MOD_LIMIT_EXCEEDED'
        END AS code
    FROM cur c LEFT JOIN seen s ON s.aid = c.aid AND s.op = c.op
),
-- decided keeps only what its six readers need: it is materialized once per
-- round, and a narrow row keeps a million of them in memory.
decided AS (
    SELECT ch.line, CASE WHEN ch.state IS NOT NULL THEN ch.aid END AS aid, ch.action_ctid, ch.op, ch.code, ch.state, ch.amount, ch.payout, ch.multi,
        ch.reason, ch.note, ch.request_id, ch.req_hash, ch.row_customer_status,
        CASE WHEN ch.code IS NOT NULL THEN
            CASE ch.code
                WHEN 'ACTION_NOT_FOUND' THEN 'No action ' || ch.aid || ' in this program'
                WHEN 'DUPLICATE_OPERATION' THEN 'An earlier row of this file already does ' || ch.op || ' to this action'
                WHEN 'CPC_NOT_REVERSIBLE' THEN 'Pay-per-click actions cannot be modified or reversed by a file'
                WHEN 'ACTION_LOCKED' THEN 'The action is ' || ch.state || '; locked and paid actions are never changed by a file'
                WHEN 'CURRENCY_MISMATCH' THEN 'CurrencyCode ' || ch.row_currency || ' differs from the action''s currency ' || ch.currency
                WHEN 'CUSTOMER_STATUS_NOT_ALLOWED' THEN 'CustomerStatus cannot be set on a reversal'
                WHEN 'ACTION_REVERSED' THEN 'The action is reversed; approve it to restore it first'
                WHEN 'MOD_LIMIT_EXCEEDED' THEN 'The action has been modified 1000 times, the limit'
            END
        WHEN ch.op = 'APPROVE' AND ch.state = 'APPROVED' THEN 'The action was already approved; nothing changed'
        END AS message,
        CASE ch.op
            WHEN 'MODIFY' THEN ch.state
            WHEN 'REVERSE' THEN 'REVERSED'
            WHEN 'APPROVE' THEN CASE ch.state WHEN 'PENDING' THEN 'APPROVED' WHEN 'REVERSED' THEN 'PENDING' ELSE ch.state END
            WHEN 'RESET' THEN CASE ch.state WHEN 'REVERSED' THEN 'PENDING' ELSE ch.state END
        END AS new_state,
        CASE ch.op
            WHEN 'MODIFY' THEN ch.row_amount
            WHEN 'REVERSE' THEN 0
            WHEN 'APPROVE' THEN CASE WHEN ch.state = 'REVERSED' THEN ch.reversed_amount ELSE ch.amount END
            WHEN 'RESET' THEN ch.original_amount
        END AS new_amount,
        CASE ch.op
            WHEN 'MODIFY' THEN CASE WHEN ch.payout_percent IS NOT NULL
                THEN round(ch.row_amount * ch.payout_percent / 100, 2) ELSE ch.payout END
            WHEN 'REVERSE' THEN 0
            WHEN 'APPROVE' THEN CASE WHEN ch.state = 'REVERSED' THEN ch.reversed_payout ELSE ch.payout END
            WHEN 'RESET' THEN ch.original_payout
        END AS new_payout,
        CASE WHEN ch.code IS NULL THEN 'APPLIED' WHEN ch.code = 'DUPLICATE_OPERATION' THEN 'DUPLICATE_ROW' ELSE 'REJECTED' END AS outcome,
        -- The event a change writes; NULL when the row applies but changes nothing.
        CASE
            WHEN ch.code IS NOT NULL THEN NULL
            WHEN ch.op = 'APPROVE' AND ch.state = 'REVERSED' THEN 'RESTORE'
            WHEN ch.op = 'APPROVE' AND ch.state = 'APPROVED' THEN NULL
            ELSE ch.op
        END AS event_kind
    FROM checked ch
),
updated AS (
    UPDATE actions a SET
        state = d.new_state,
        amount = d.new_amount,
        payout = d.new_payout,
        modification_count = a.modification_count + CASE WHEN d.op = 'MODIFY' THEN 1 ELSE 0 END,
        reversed_amount = CASE WHEN d.op = 'REVERSE' THEN a.amount ELSE a.reversed_amount END,
        reversed_payout = CASE WHEN d.op = 'REVERSE' THEN a.payout ELSE a.reversed_payout END,
        customer_status = coalesce(d.row_customer_status, a.customer_status),
        version = a.version + 1,
        updated_at = now()
    FROM decided d
    -- The row read above, found again by its physical address rather than by
    -- hashing every action a second time. Safe because everything that writes a
    -- brand's actions holds the brand's lock; should anything else have moved a
    -- row, it is missed here, the counts below differ, and the file is retried.
    WHERE a.ctid = d.action_ctid AND a.id = d.aid AND d.event_kind IS NOT NULL
    RETURNING 1
),
events AS (
    INSERT INTO ledger_events (brand_id, action_id, kind, actor, file_id, line, request_id, reason, note,
        old_state, new_state, old_amount, new_amount, old_payout, new_payout)
    SELECT $2, d.aid, d.event_kind, $4, $3, d.line, d.request_id, d.reason, d.note,
        d.state, d.new_state, d.amount, d.new_amount, d.payout, d.new_payout
    FROM decided d WHERE d.event_kind IS NOT NULL
),
keys AS (
    INSERT INTO request_ids (brand_id, request_id, content_hash, file_id, line)
    SELECT $2, d.request_id, d.req_hash, $3, d.line
    FROM decided d WHERE d.code IS NULL AND d.request_id IS NOT NULL
),
remembered AS (
    INSERT INTO seen (aid, op) SELECT d.aid, d.op FROM decided d WHERE d.multi AND d.aid IS NOT NULL
    ON CONFLICT DO NOTHING
),
unchanged AS (
    INSERT INTO file_rows (file_id, line, outcome, code, message, action_id, operation)
    SELECT $3, d.line, d.outcome, d.code, d.message, d.aid, d.op
    FROM decided d WHERE d.event_kind IS NULL
)
SELECT d.outcome, coalesce(d.code, ''), count(*),
    (SELECT count(*) FROM decided WHERE event_kind IS NOT NULL) AS changes,
    (SELECT count(*) FROM updated) AS updated
FROM decided d GROUP BY 1, 2`
