package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/money"
)

// lifecycleActor names the lifecycle job in the ledger's events.
const lifecycleActor = "lifecycle"

// safetyNetDays is how long an action under open-ended locking may stay PENDING
// before the lifecycle locks it anyway (SPEC §2), in calendar days in the brand's
// timezone, counted from the event date like a contract's locking period.
const safetyNetDays = 730

// LifecycleSummary is what one lifecycle run did, brand by brand.
type LifecycleSummary struct {
	At     time.Time
	Brands []BrandLifecycle // every brand in the ledger, by slug
}

// BrandLifecycle is what a lifecycle run or a deposit did to one brand.
type BrandLifecycle struct {
	Brand    string
	Currency string
	Locked   int          // actions that went to LOCKED (some of them on to PAID in the same run)
	Paid     int          // payouts booked: actions that went to PAID
	Delayed  int          // of those, payouts the balance did not cover (payout_delayed)
	Released int          // delayed payouts (of this run or earlier) that the funds now cover
	Debited  money.Amount // the sum of the payouts booked
	Balance  money.Amount // the brand's balance afterwards; negative while payouts are delayed
}

// RunLifecycle moves every brand's actions along the contract (SPEC §2) as of the
// clock reading at. The schedule decides when; this does the work. For each brand,
// under the brand's lock (so never in the middle of one of its files) and in one
// transaction:
//
//   - Locks every APPROVED action, and every PENDING action whose lock_date <= at.
//     Under open-ended locking (no lock_date) a PENDING action locks only through the
//     safety net: event_date + 730 calendar days in the brand's timezone. An action
//     locked late by the job (its lock date or the safety net passed while the job
//     did not run) keeps its contract dates: the lock moment is the lock date.
//   - An APPROVED action whose lock date has not come (or that has none) is locked
//     at the moment of the run, and its payout date becomes that moment +
//     payout_delay_days (calendar days in the brand's timezone) — never later
//     than the contract's payout date. The brand approved it early to have it
//     settled early: the payout delay then runs from the actual lock, as it does
//     for every other action, and an approval never postpones a payout.
//   - Pays every LOCKED action whose payout_date <= at, including those just
//     locked: PAID, a PAY event with balance_delta = -payout, the balance
//     debited by the same amount in the same statement. Payouts are booked in
//     (payout_date, id) order; each one whose cumulative debit takes the balance
//     below zero is still booked, and flagged payout_delayed (a zero payout never is).
//   - Releases delayed payouts that the funds now cover (see Deposit).
//
// It is idempotent: a second run at the same at finds nothing due. Two runs at once
// serialise on each brand's lock, and the second finds the first's work done.
func (l *Ledger) RunLifecycle(ctx context.Context, at time.Time) (LifecycleSummary, error) {
	sum := LifecycleSummary{At: at}
	type brandRow struct {
		id       int64
		slug     string
		currency string
	}
	rows, err := l.pool.Query(ctx, "SELECT id, slug, currency FROM brands ORDER BY slug")
	if err != nil {
		return sum, fmt.Errorf("ledger: lifecycle: %w", interpretError(err))
	}
	brands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (brandRow, error) {
		var b brandRow
		return b, r.Scan(&b.id, &b.slug, &b.currency)
	})
	if err != nil {
		return sum, fmt.Errorf("ledger: lifecycle: %w", interpretError(err))
	}
	for _, b := range brands {
		bl := BrandLifecycle{Brand: b.slug, Currency: b.currency}
		began := time.Now()
		err := l.inTx(ctx, func(tx pgx.Tx) error {
			bl = BrandLifecycle{Brand: b.slug, Currency: b.currency}
			if err := lockBrand(ctx, tx, b.id); err != nil {
				return err
			}
			// The window over the due payouts sorts them all; keep that in memory.
			if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '256MB'"); err != nil {
				return interpretError(err)
			}
			if err := lockAndPay(ctx, tx, lockAndPaySQL, b.id, at, lifecycleActor, &bl); err != nil {
				return err
			}
			released, err := releasePayouts(ctx, tx, b.id, lifecycleActor)
			if err != nil {
				return err
			}
			bl.Released = released
			bl.Balance, err = balanceOf(ctx, tx, b.id)
			return err
		})
		if err != nil {
			return sum, fmt.Errorf("ledger: lifecycle of brand %s: %w", b.slug, err)
		}
		l.logger.DebugContext(ctx, "lifecycle run", "brand", b.slug, "at", at, "locked", bl.Locked,
			"paid", bl.Paid, "delayed", bl.Delayed, "released", bl.Released, "took", time.Since(began))
		sum.Brands = append(sum.Brands, bl)
	}
	return sum, nil
}

// lockAndPay locks and pays a brand's due actions in one statement: each action
// is updated once, even when it locks and is paid in the same run, and writes its
// LOCK event, then its PAY event. query is lockAndPaySQL (every due action of the
// brand) or lockAndPayCreatedSQL (only those in the temporary table created).
func lockAndPay(ctx context.Context, tx pgx.Tx, query string, brand int64, at time.Time, actor string, bl *BrandLifecycle) error {
	var decided, updated int
	var debited string
	err := tx.QueryRow(ctx, query, brand, at, actor, safetyNetDays).
		Scan(&bl.Locked, &bl.Paid, &bl.Delayed, &debited, &decided, &updated)
	if err != nil {
		return fmt.Errorf("lock and pay: %w", interpretError(err))
	}
	if decided != updated {
		// Everything that writes a brand's actions holds the brand's lock, so this
		// means a row moved under us; nothing commits, and a rerun starts afresh.
		return fmt.Errorf("%w: %d actions due but %d updated: an action changed under the lifecycle",
			ErrTransient, decided, updated)
	}
	d, err := money.Parse(debited, false)
	if err != nil {
		return fmt.Errorf("lock and pay: debited %q: %w", debited, err)
	}
	bl.Debited = d
	// For the daily report, with the events (see tallyEvents).
	if err := tallyEvents(ctx, tx, brand, "LOCK", bl.Locked, 0); err != nil {
		return err
	}
	return tallyEvents(ctx, tx, brand, "PAY", bl.Paid, -d)
}

var (
	lockAndPaySQL = strings.Replace(lockAndPayTemplate, "/*scope*/", "", 1)
	// lockAndPayCreatedSQL settles only actions just created (by VALID inquiries,
	// whose dates may be past): the rest of the brand waits for the lifecycle job.
	lockAndPayCreatedSQL = strings.Replace(lockAndPayTemplate, "/*scope*/", "AND a.id IN (SELECT action_id FROM created)", 1)
)

// lockAndPayTemplate: $1 brand, $2 the clock, $3 the actor, $4 the safety net in days. Every date computation is
// in calendar days in the brand's timezone, exactly as import computes lock_date
// and payout_date (a day is 23 or 25 hours across a DST change).
//
// There is deliberately no index on state: it would make every reversal or
// approval in a file apply a non-HOT update. The brand's actions are scanned once
// per run instead (with the brand's part of actions_by_oid for a small brand).
const lockAndPayTemplate = `
WITH b AS (
    SELECT balance, timezone, payout_delay_days FROM brands WHERE id = $1
),
due AS (
    SELECT a.ctid AS tid, a.id, a.partner_id, a.state, a.amount, a.payout, a.lock_date, a.payout_date, n.safety_net
    FROM actions a
    CROSS JOIN b
    CROSS JOIN LATERAL (
        SELECT CASE WHEN a.state = 'PENDING' AND a.lock_date IS NULL THEN
            ((a.event_date AT TIME ZONE b.timezone) + make_interval(days => $4)) AT TIME ZONE b.timezone
        END AS safety_net
    ) n
    WHERE a.brand_id = $1 /*scope*/ AND (
        a.state = 'APPROVED'
        OR (a.state = 'PENDING' AND coalesce(a.lock_date, n.safety_net) <= $2::timestamptz)
        OR (a.state = 'LOCKED' AND a.payout_date <= $2::timestamptz))
),
-- The payout delay is needed only for an action locked early or by the safety
-- net; the partner's own terms (partner_contracts) are looked up for those alone,
-- inside the CASE, not joined to every due action.
dated AS (
    SELECT d.tid, d.id, d.state, d.amount, d.payout,
        CASE
            WHEN d.state = 'LOCKED' OR d.lock_date <= $2::timestamptz THEN d.lock_date
            WHEN d.state = 'PENDING' THEN d.safety_net
            ELSE $2::timestamptz  -- approved early: locks now
        END AS lock_date,
        CASE
            WHEN d.state = 'LOCKED' OR d.lock_date <= $2::timestamptz THEN d.payout_date
            WHEN d.state = 'PENDING' THEN
                ((d.safety_net AT TIME ZONE b.timezone) + make_interval(days => coalesce(
                    (SELECT pc.payout_delay_days FROM partner_contracts pc WHERE pc.brand_id = $1 AND pc.partner_id = d.partner_id),
                    b.payout_delay_days))) AT TIME ZONE b.timezone
            ELSE least(d.payout_date,
                (($2::timestamptz AT TIME ZONE b.timezone) + make_interval(days => coalesce(
                    (SELECT pc.payout_delay_days FROM partner_contracts pc WHERE pc.brand_id = $1 AND pc.partner_id = d.partner_id),
                    b.payout_delay_days))) AT TIME ZONE b.timezone)
        END AS payout_date
    FROM due d CROSS JOIN b
),
paying AS (
    SELECT x.*, coalesce(x.payout_date <= $2::timestamptz, false) AS pays FROM dated x
),
decided AS (
    SELECT p.*, p.pays AND p.payout > 0 AND b.balance - sum(CASE WHEN p.pays THEN p.payout ELSE 0 END)
        OVER (ORDER BY p.payout_date, p.id ROWS UNBOUNDED PRECEDING) < 0 AS delayed
    FROM paying p CROSS JOIN b
),
updated AS (
    UPDATE actions a SET
        state = CASE WHEN d.pays THEN 'PAID' ELSE 'LOCKED' END,
        lock_date = d.lock_date,
        payout_date = d.payout_date,
        payout_delayed = d.delayed,
        version = a.version + 1,
        updated_at = now()
    -- In physical order, and found again by physical address as the file apply
    -- does: the heap is visited page by page rather than in payout order (a third
    -- faster over a million actions). Safe under the brand's lock, and checked by
    -- the caller against the count of decided rows.
    FROM (SELECT * FROM decided ORDER BY tid) d
    WHERE a.ctid = d.tid AND a.id = d.id
    RETURNING 1
),
events AS (
    -- For an action that locks and is paid in this run, its LOCK event comes first.
    -- In action order, so ledger_events_by_action is written in order too.
    INSERT INTO ledger_events (brand_id, action_id, kind, actor, old_state, new_state,
        old_amount, new_amount, old_payout, new_payout, balance_delta)
    SELECT $1, d.id, e.kind, $3, e.old_state, e.new_state, d.amount, d.amount, d.payout, d.payout, e.delta
    FROM (SELECT * FROM decided ORDER BY id) d
    CROSS JOIN LATERAL (VALUES
        ('LOCK', d.state, 'LOCKED', NULL::numeric),
        ('PAY', 'LOCKED', 'PAID', -d.payout)
    ) e (kind, old_state, new_state, delta)
    WHERE (e.kind = 'LOCK' AND d.state <> 'LOCKED') OR (e.kind = 'PAY' AND d.pays)
),
debit AS (
    UPDATE brands SET balance = balance - (SELECT coalesce(sum(payout), 0) FROM decided WHERE pays)
    WHERE id = $1
)
SELECT count(*) FILTER (WHERE state <> 'LOCKED'), count(*) FILTER (WHERE pays), count(*) FILTER (WHERE delayed),
    coalesce(sum(payout) FILTER (WHERE pays), 0)::text, count(*), (SELECT count(*) FROM updated)
FROM decided`

// balanceOf reads a brand's balance.
func balanceOf(ctx context.Context, q querier, brand int64) (money.Amount, error) {
	var s string
	if err := q.QueryRow(ctx, "SELECT balance::text FROM brands WHERE id = $1", brand).Scan(&s); err != nil {
		return 0, interpretError(err)
	}
	return parseSigned(s)
}

// parseSigned reads a balance, which unlike every other amount may be negative.
func parseSigned(s string) (money.Amount, error) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	a, err := money.Parse(s, false)
	if err != nil {
		return 0, fmt.Errorf("ledger: balance %q from the database: %w", s, err)
	}
	if neg {
		a = -a
	}
	return a, nil
}
