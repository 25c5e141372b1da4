package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/processors"
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

var balanceColumns = []string{"Brand", "Currency", "Balance", "DelayedPayouts", "DelayedAmount"}

// exportBalances prints every brand's balance and its delayed payouts, for
// reconciliation.
func (e *env) exportBalances(ctx context.Context, args []string) error {
	fs, cfg := e.flags("export balances")
	format := fs.String("format", "csv", "csv or json")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("export balances takes no arguments")
	}
	if *format != "csv" && *format != "json" {
		return usagef("export balances: --format is csv or json, not %q", *format)
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	balances, err := l.Balances(ctx)
	if err != nil {
		return err
	}
	if *format == "json" {
		// Amounts are strings, as in export actions, so no reader turns them into floats.
		out := make([]map[string]any, 0, len(balances))
		for _, b := range balances {
			out = append(out, map[string]any{"Brand": b.Brand, "Currency": b.Currency, "Balance": b.Balance.String(),
				"DelayedPayouts": b.DelayedCount, "DelayedAmount": b.DelayedAmount.String()})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := csv.NewWriter(e.stdout)
	w.Write(balanceColumns)
	for _, b := range balances {
		// Text cells are escaped against formulas. The amounts are returnsd's own
		// numbers (digits, a point, a leading minus for a negative balance) and are
		// left as numbers: an apostrophe would turn a negative balance into text in
		// the very spreadsheet it is reconciled in.
		w.Write([]string{processors.EscapeCell(b.Brand), processors.EscapeCell(b.Currency), b.Balance.String(),
			strconv.Itoa(b.DelayedCount), b.DelayedAmount.String()})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("export balances: %w", err)
	}
	return nil
}
