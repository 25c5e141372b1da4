package main

import (
	"context"
	"fmt"

	"github.com/returnsd/returnsd/money"
)

// fundsDeposit records a top-up of a brand's funds and releases the delayed
// payouts it covers.
func (e *env) fundsDeposit(ctx context.Context, args []string) error {
	fs, cfg := e.flags("funds deposit")
	brand := fs.String("brand", "", "the brand whose funds these are (required)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if *brand == "" {
		return usagef("funds deposit: --brand is required")
	}
	if len(pos) != 1 {
		return usagef("funds deposit: give exactly one AMOUNT, such as 1500.00")
	}
	amount, err := money.Parse(pos[0], false)
	if err != nil || amount <= 0 {
		return usagef("funds deposit: AMOUNT %q is not a positive amount with at most 2 decimal places", pos[0])
	}
	b, l, err := e.openBrandLedger(ctx, *brand)
	if err != nil {
		return err
	}
	defer l.Close()
	res, err := l.Deposit(ctx, b.ID, amount, e.actor())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deposited %s %s to %s: balance %s %s, %d delayed payouts released\n",
		amount, b.Currency, b.ID, res.Balance, b.Currency, res.Released)
	return nil
}
