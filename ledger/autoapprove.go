package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/money"
)

// AutoApprovalActor names the automatic approval in the ledger's events, the
// inquiries it resolved and their history.
const AutoApprovalActor = "auto-approval"

// AutoApproved is what one auto-approval run did for a brand.
type AutoApproved struct {
	Brand    string
	Approved int          // inquiries approved as VALID, each with a new action
	Payout   money.Amount // the sum of their payouts
	Locked   int          // of the new actions, locked at once (their lock date was past)
	Paid     int          // and paid at once (their payout date was past too)
	Delayed  int          // of those, payouts the balance did not cover
	// Capped are due inquiries left NEW because the partner's auto-approved
	// payouts of the month would pass the rule's monthly cap: a later month's
	// room approves them, unless the brand resolves them first.
	Capped int
	// Tracked are due UNTRACKED inquiries left NEW because their order has
	// been tracked meanwhile: approving them would pay the order twice. They
	// wait for the brand (or auto-resolution).
	Tracked int
}

// AutoApproveInquiries approves the brand's NEW inquiries whose Auto Approval
// Date has come (at, or now when at is zero) as VALID, exactly as a VALID row
// of a resolution file without Final Payout, Transaction Date, Action Tracker
// or Sale Amount would: the inquiry's own details, the payout its Expected
// Payout or else the contract's, a new action under the contract locked and
// paid at once when its dates are past (the balance may go negative). The rows
// are staged as a resolution file's are and run through the same statements,
// with no file: the events, the inquiries and their history name the actor
// auto-approval and no file or line.
//
// A monthly cap is taken per partner in order of submission, within the
// calendar month of at in the brand's timezone; what does not fit stays NEW
// (see AutoApproved). The date itself already excludes what the rule does not
// approve (another type, over max_payout, a partner exempt). It runs under the
// brand's lock, in one transaction, and is idempotent: a second run at the same
// at finds nothing due.
func (l *Ledger) AutoApproveInquiries(ctx context.Context, brand string, at time.Time) (AutoApproved, error) {
	at = clock(at)
	var res AutoApproved
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		res = AutoApproved{Brand: brand}
		id, err := lockBrandBySlug(ctx, tx, brand)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '256MB'"); err != nil {
			return interpretError(err)
		}
		err = runSteps(ctx, tx,
			step{"find due inquiries", findDueInquiries, []any{id, at}},
			step{"stage", createResolutionStage, nil},
			step{"stage approvals", stageAutoApprovals, nil},
			step{"check resolutions", checkResolutions, []any{id, at}},
			step{"number new actions", numberCreatedActions, nil},
			step{"resolve inquiries", resolveInquiries, []any{id, nil, AutoApprovalActor, at}})
		if err != nil {
			return err
		}
		var refused int
		var payout string
		err = tx.QueryRow(ctx, `SELECT
				(SELECT count(*) FILTER (WHERE NOT chosen AND NOT tracked) FROM due),
				(SELECT count(*) FILTER (WHERE tracked) FROM due),
				(SELECT count(*) FILTER (WHERE verdict IS NOT NULL) FROM work),
				(SELECT count(*) FROM created),
				(SELECT coalesce(sum(a.payout), 0)::text FROM created c JOIN actions a ON a.id = c.action_id)`).
			Scan(&res.Capped, &res.Tracked, &refused, &res.Approved, &payout)
		if err != nil {
			return interpretError(err)
		}
		if refused > 0 {
			// The Auto Approval Date is given only to inquiries a VALID
			// resolution accepts; one refused here stays NEW for the brand.
			var first string
			_ = tx.QueryRow(ctx, "SELECT inquiry_id || ': ' || verdict_message FROM work WHERE verdict IS NOT NULL ORDER BY line LIMIT 1").Scan(&first)
			l.logger.WarnContext(ctx, "due inquiries the resolution checks refused; left for the brand",
				"brand", brand, "refused", refused, "first", first)
		}
		if res.Payout, err = money.Parse(payout, false); err != nil {
			return fmt.Errorf("payout %q: %w", payout, err)
		}
		// The CREATE events belong to no file: the daily report counts them
		// from event_tallies, as the LOCK and PAY events lockAndPay tallies.
		if err := tallyEvents(ctx, tx, id, "CREATE", res.Approved, 0); err != nil {
			return err
		}
		var bl BrandLifecycle
		if err := lockAndPay(ctx, tx, lockAndPayCreatedSQL, id, at, AutoApprovalActor, &bl); err != nil {
			return err
		}
		res.Locked, res.Paid, res.Delayed = bl.Locked, bl.Paid, bl.Delayed
		return nil
	})
	if err != nil {
		return AutoApproved{Brand: brand}, fmt.Errorf("ledger: auto-approve inquiries of %s: %w", brand, err)
	}
	return res, nil
}

// findDueInquiries: $1 brand, $2 the clock. The NEW inquiries whose Auto
// Approval Date has come, checked against the rule as it is now, each with the
// payout the approval gives it, in order of submission per partner against the
// partner's monthly cap (chosen), less those whose order is tracked by now
// (tracked). The month is the calendar month of the clock in the brand's
// timezone; what the rule approved in it before counts.
const findDueInquiries = `
CREATE TEMP TABLE due ON COMMIT DROP AS
WITH candidates AS (
    SELECT i.id, i.inquiry_id, i.partner_id, i.submitted_at, i.expected_payout, v.payout, v.monthly_cap, v.after,
        i.type = 'UNTRACKED' AND EXISTS (
            SELECT 1 FROM actions a WHERE a.brand_id = $1 AND a.oid = i.oid
                AND (i.tracker_id IS NULL OR a.tracker_id = i.tracker_id) AND a.state <> 'REVERSED') AS tracked
    FROM inquiries i JOIN inquiry_auto_approval v ON v.id = i.id
    WHERE i.brand_id = $1 AND i.status = 'NEW' AND i.auto_approve_at <= $2::timestamptz AND v.due_at <= $2::timestamptz
),
month AS (
    SELECT date_trunc('month', $2::timestamptz AT TIME ZONE b.timezone) AT TIME ZONE b.timezone AS starts,
        (date_trunc('month', $2::timestamptz AT TIME ZONE b.timezone) + interval '1 month') AT TIME ZONE b.timezone AS ends
    FROM brands b WHERE b.id = $1
),
spent AS (
    SELECT i.partner_id, sum(i.final_payout) AS paid
    FROM inquiries i CROSS JOIN month m
    WHERE i.brand_id = $1 AND i.resolved_by = 'auto-approval' AND i.status = 'VALID'
        AND i.resolved_at >= m.starts AND i.resolved_at < m.ends
    GROUP BY i.partner_id
),
running AS (
    SELECT c.*, coalesce(s.paid, 0) + sum(CASE WHEN NOT c.tracked THEN c.payout ELSE 0 END)
        OVER (PARTITION BY c.partner_id ORDER BY c.submitted_at, c.id) AS month_total
    FROM candidates c LEFT JOIN spent s ON s.partner_id = c.partner_id
)
SELECT r.*, NOT r.tracked AND (r.monthly_cap IS NULL OR r.month_total <= r.monthly_cap) AS chosen FROM running r`

// stageAutoApprovals writes the chosen inquiries as the VALID rows of a
// resolution file would stage them: no Final Payout but the Expected Payout, the
// inquiry's own date, tracker and amount.
const stageAutoApprovals = `
INSERT INTO stage (line, inquiry_id, status, final_payout, notes)
SELECT row_number() OVER (ORDER BY submitted_at, id), inquiry_id, 'VALID', expected_payout,
    'Approved automatically: the brand did not resolve it within ' || interval_words(after)
FROM due WHERE chosen`
