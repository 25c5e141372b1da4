package main

import (
	"context"
	"flag"
	"strconv"

	"github.com/returnsd/returnsd/report"
)

// exportFlags are the filters export actions and export inquiries share.
type exportFlags struct {
	brand, format, state, partner, from, to *string
}

func (e *env) exportFlagSet(name, dateName string) (*flag.FlagSet, *string, exportFlags) {
	fs, cfg := e.flags(name)
	return fs, cfg, exportFlags{
		brand:   fs.String("brand", "", "the brand whose records to export (required)"),
		format:  fs.String("format", "csv", "csv or json"),
		state:   fs.String("state", "", "only these states, separated by commas"),
		partner: fs.String("partner", "", "only this partner's"),
		from:    fs.String("from", "", "only from this "+dateName+" on (YYYY-MM-DD, in the brand's timezone)"),
		to:      fs.String("to", "", "only up to this "+dateName+", included (YYYY-MM-DD, in the brand's timezone)"),
	}
}

// parsed are export flags read and checked.
type parsed struct {
	format  report.Format
	states  []string
	partner int64
	dates   report.DateRange
}

func (x exportFlags) parse(cmd string, states []string) (parsed, error) {
	var p parsed
	var err error
	if *x.brand == "" {
		return p, usagef("%s: --brand is required", cmd)
	}
	if p.format, err = report.ParseFormat(*x.format, false); err != nil {
		return p, usagef("%s: %v", cmd, err)
	}
	if p.states, err = report.ParseStates(*x.state, states); err != nil {
		return p, usagef("%s: --state: %v", cmd, err)
	}
	if *x.partner != "" {
		if p.partner, err = strconv.ParseInt(*x.partner, 10, 64); err != nil || p.partner <= 0 {
			return p, usagef("%s: --partner %q is not a partner id", cmd, *x.partner)
		}
	}
	for _, d := range []struct {
		flag, value string
		into        *report.Date
	}{{"--from", *x.from, &p.dates.From}, {"--to", *x.to, &p.dates.To}} {
		if d.value == "" {
			continue
		}
		if *d.into, err = report.ParseDate(d.value); err != nil {
			return p, usagef("%s: %s: %v", cmd, d.flag, err)
		}
	}
	if !p.dates.From.IsZero() && !p.dates.To.IsZero() && p.dates.To.Before(p.dates.From) {
		return p, usagef("%s: --to %s is before --from %s", cmd, p.dates.To, p.dates.From)
	}
	return p, nil
}

// exportActions prints the current state of a brand's actions.
func (e *env) exportActions(ctx context.Context, args []string) error {
	fs, cfg, x := e.exportFlagSet("export actions", "event date")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("export actions takes no arguments")
	}
	p, err := x.parse("export actions", report.ActionStates)
	if err != nil {
		return err
	}
	b, l, err := e.openBrandLedger(ctx, *x.brand)
	if err != nil {
		return err
	}
	defer l.Close()
	return report.ExportActions(ctx, l, report.ActionFilter{Brand: b.ID, Location: b.Location(), States: p.states,
		Partner: p.partner, Dates: p.dates}, p.format, e.stdout)
}

// exportInquiries prints a brand's inquiries and what became of them, for
// reconciliation with the partners' side.
func (e *env) exportInquiries(ctx context.Context, args []string) error {
	fs, cfg, x := e.exportFlagSet("export inquiries", "submission date")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("export inquiries takes no arguments")
	}
	p, err := x.parse("export inquiries", report.InquiryStates)
	if err != nil {
		return err
	}
	b, l, err := e.openBrandLedger(ctx, *x.brand)
	if err != nil {
		return err
	}
	defer l.Close()
	return report.ExportInquiries(ctx, l, report.InquiryFilter{Brand: b.ID, Location: b.Location(), States: p.states,
		Partner: p.partner, Dates: p.dates}, p.format, e.stdout)
}

// exportBalances prints every brand's balance (or one brand's) and its
// delayed payouts, for reconciliation.
func (e *env) exportBalances(ctx context.Context, args []string) error {
	fs, cfg := e.flags("export balances")
	format := fs.String("format", "csv", "csv or json")
	brand := fs.String("brand", "", "only this brand (default: every brand)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("export balances takes no arguments")
	}
	f, err := report.ParseFormat(*format, false)
	if err != nil {
		return usagef("export balances: %v", err)
	}
	if *brand != "" {
		if _, err := e.cfg.Brand(*brand); err != nil {
			return err
		}
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	return report.ExportBalances(ctx, l, report.BalanceFilter{Brand: *brand}, f, e.stdout)
}
