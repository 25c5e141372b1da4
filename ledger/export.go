package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/returnsd/returnsd/money"
)

// Action is the current state of one action, as `returnsd export actions` shows it.
type Action struct {
	ID                int64
	Oid               string
	TrackerID         int64
	PartnerID         int64
	State             string
	Amount            money.Amount
	Payout            money.Amount
	Currency          string
	EventDate         time.Time
	LockDate          *time.Time // nil under open-ended locking
	PayoutDate        *time.Time
	ModificationCount int
}

// ActionQuery selects the actions of an export.
type ActionQuery struct {
	Brand   string   // the brand's slug; required
	States  []string // only actions in these states; nil for every state
	Partner int64    // only this partner's actions; 0 for every partner
	// From and To bound the event date: From included, To not. A zero time
	// leaves that end open.
	From, To time.Time
}

// ExportActions calls fn with every action of the brand, in ActionId order.
func (l *Ledger) ExportActions(ctx context.Context, brand string, fn func(Action) error) error {
	return l.Actions(ctx, ActionQuery{Brand: brand}, fn)
}

// Actions calls fn with the actions q selects, in ActionId order. It streams:
// memory does not grow with the number of actions.
func (l *Ledger) Actions(ctx context.Context, q ActionQuery, fn func(Action) error) error {
	id, err := brandID(ctx, l.pool, q.Brand)
	if err != nil {
		return fmt.Errorf("ledger: export actions: %w", err)
	}
	rows, err := l.pool.Query(ctx, `
		SELECT id, oid, tracker_id, partner_id, state, amount::text, payout::text, currency,
			event_date, lock_date, payout_date, modification_count
		FROM actions
		WHERE brand_id = $1 AND ($2::text[] IS NULL OR state = ANY ($2)) AND ($3::bigint = 0 OR partner_id = $3)
			AND ($4::timestamptz IS NULL OR event_date >= $4) AND ($5::timestamptz IS NULL OR event_date < $5)
		ORDER BY id`, id, q.States, q.Partner, optionalTime(q.From), optionalTime(q.To))
	if err != nil {
		return fmt.Errorf("ledger: export actions: %w", interpretError(err))
	}
	defer rows.Close()
	var a Action
	var amount, payout string
	for rows.Next() {
		if err := rows.Scan(&a.ID, &a.Oid, &a.TrackerID, &a.PartnerID, &a.State, &amount, &payout,
			&a.Currency, &a.EventDate, &a.LockDate, &a.PayoutDate, &a.ModificationCount); err != nil {
			return fmt.Errorf("ledger: export actions: %w", err)
		}
		if a.Amount, err = money.Parse(amount, false); err != nil {
			return fmt.Errorf("ledger: export actions: amount of %d: %w", a.ID, err)
		}
		if a.Payout, err = money.Parse(payout, false); err != nil {
			return fmt.Errorf("ledger: export actions: payout of %d: %w", a.ID, err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: export actions: %w", interpretError(err))
	}
	return nil
}

// optionalTime is t, or NULL for the zero time.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
