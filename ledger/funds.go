package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/money"
)

// ErrInvalidDeposit is returned for a deposit of zero or less.
var ErrInvalidDeposit = errors.New("a deposit must be a positive amount")

// DepositResult is what a deposit did to the brand's funds.
type DepositResult struct {
	Balance  money.Amount // afterwards
	Released int          // delayed payouts the deposit released
}

// Deposit records a top-up of a brand's funds: a DEPOSIT event with
// balance_delta = +amount and the balance credited, in one statement, under the
// brand's lock. Then it releases the delayed payouts the funds now cover, oldest
// first (see releasePayouts). amount must be positive.
func (l *Ledger) Deposit(ctx context.Context, brand string, amount money.Amount, actor string) (DepositResult, error) {
	var res DepositResult
	if amount <= 0 {
		return res, fmt.Errorf("ledger: deposit %s: %w", amount, ErrInvalidDeposit)
	}
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		id, err := brandID(ctx, tx, brand)
		if err != nil {
			return err
		}
		if err := lockBrand(ctx, tx, id); err != nil {
			return err
		}
		var balance string
		err = tx.QueryRow(ctx, `
			WITH deposit AS (
				INSERT INTO ledger_events (brand_id, kind, actor, balance_delta)
				VALUES ($1, 'DEPOSIT', $3, $2::numeric)
			)
			UPDATE brands SET balance = balance + $2::numeric WHERE id = $1
			RETURNING balance::text`, id, amount.String(), actor).Scan(&balance)
		if err != nil {
			return interpretError(err)
		}
		if err := tallyEvents(ctx, tx, id, "DEPOSIT", 1, amount); err != nil {
			return err
		}
		if res.Released, err = releasePayouts(ctx, tx, id, actor); err != nil {
			return err
		}
		res.Balance, err = balanceOf(ctx, tx, id)
		return err
	})
	if err != nil {
		return DepositResult{}, fmt.Errorf("ledger: deposit to %s: %w", brand, err)
	}
	l.logger.InfoContext(ctx, "deposit", "brand", brand, "amount", amount.String(),
		"balance", res.Balance.String(), "released", res.Released)
	return res, nil
}

// releasePayouts releases the brand's delayed payouts that its funds now cover,
// oldest first, in (payout_date, id) order — the order they were booked in.
//
// Every delayed payout was already debited, so the balance is what the deposits
// leave after all booked payouts. A delayed payout is covered when the deposits
// cover it and every payout booked before it: when the balance plus the delayed
// payouts booked after it is >= 0. A balance >= 0 releases them all; a negative
// one keeps the newest delayed payouts, whose sum exceeds the shortfall, delayed.
// A released payout gets a PAYOUT_RELEASED event (no money moves: it was debited
// when it was booked) and payout_delayed = false.
func releasePayouts(ctx context.Context, tx pgx.Tx, brand int64, actor string) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `
		WITH waiting AS (
			SELECT a.ctid AS tid, a.id,
				b.balance + coalesce(sum(a.payout) OVER (ORDER BY a.payout_date DESC, a.id DESC
					ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS covered
			FROM actions a JOIN brands b ON b.id = a.brand_id
			WHERE a.brand_id = $1 AND a.payout_delayed
		),
		released AS (
			UPDATE actions a SET payout_delayed = false, version = a.version + 1, updated_at = now()
			FROM waiting w WHERE a.ctid = w.tid AND a.id = w.id AND w.covered >= 0
			RETURNING a.id, a.state, a.amount, a.payout, a.payout_date
		),
		events AS (
			INSERT INTO ledger_events (brand_id, action_id, kind, actor, old_state, new_state,
				old_amount, new_amount, old_payout, new_payout)
			SELECT $1, id, 'PAYOUT_RELEASED', $2, state, state, amount, amount, payout, payout
			FROM released ORDER BY payout_date, id
		)
		SELECT count(*) FROM released`, brand, actor).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("release delayed payouts: %w", interpretError(err))
	}
	return n, tallyEvents(ctx, tx, brand, "PAYOUT_RELEASED", n, 0)
}

// Balance is a brand's funds, as `returnsd export balances` shows them.
type Balance struct {
	Brand         string
	Currency      string
	Balance       money.Amount // negative while payouts are delayed
	DelayedCount  int          // payouts booked but not covered by the funds
	DelayedAmount money.Amount
}

// Balances returns every brand's balance and delayed payouts, by slug.
func (l *Ledger) Balances(ctx context.Context) ([]Balance, error) {
	rows, err := l.pool.Query(ctx, `
		SELECT b.slug, b.currency, b.balance::text, count(a.id), coalesce(sum(a.payout), 0)::text
		FROM brands b
		LEFT JOIN actions a ON a.brand_id = b.id AND a.payout_delayed
		GROUP BY b.id ORDER BY b.slug`)
	if err != nil {
		return nil, fmt.Errorf("ledger: balances: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Balance, error) {
		var b Balance
		var balance, delayed string
		if err := r.Scan(&b.Brand, &b.Currency, &balance, &b.DelayedCount, &delayed); err != nil {
			return b, err
		}
		var err error
		if b.Balance, err = parseSigned(balance); err != nil {
			return b, err
		}
		b.DelayedAmount, err = money.Parse(delayed, false)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: balances: %w", interpretError(err))
	}
	return out, nil
}
