package main

import (
	"context"
	"flag"
	"strconv"
	"time"

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
	if p.dates, err = parseDateRange(cmd, "--from", *x.from, "--to", *x.to); err != nil {
		return p, err
	}
	return p, nil
}

// parseDateRange reads the flags of a range of days, both YYYY-MM-DD.
func parseDateRange(cmd, fromFlag, from, toFlag, to string) (report.DateRange, error) {
	var r report.DateRange
	var err error
	for _, d := range []struct {
		flag, value string
		into        *report.Date
	}{{fromFlag, from, &r.From}, {toFlag, to, &r.To}} {
		if d.value == "" {
			continue
		}
		if *d.into, err = report.ParseDate(d.value); err != nil {
			return r, usagef("%s: %s: %v", cmd, d.flag, err)
		}
	}
	if !r.From.IsZero() && !r.To.IsZero() && r.To.Before(r.From) {
		return r, usagef("%s: %s %s is before %s %s", cmd, toFlag, r.To, fromFlag, r.From)
	}
	return r, nil
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
	if *x.brand == "" {
		return usagef("export actions: --brand is required")
	}
	b, l, err := e.openBrandLedger(ctx, *x.brand)
	if err != nil {
		return err
	}
	defer l.Close()
	return report.ExportActions(ctx, l, report.ActionFilter{Brand: b.ID, Location: b.Location(), States: p.states,
		Partner: p.partner, Dates: p.dates}, p.format, e.stdout)
}

// exportInquiries prints inquiries and what became of them, as the partners'
// inquiry list shows them: a brand's (--brand), or a partner's with every
// brand (--partner without --brand), such as its status file of what changed
// since its last one (--since).
func (e *env) exportInquiries(ctx context.Context, args []string) error {
	fs, cfg, x := e.exportFlagSet("export inquiries", "submission date")
	types := fs.String("type", "", "only these types (UNTRACKED, INCORRECT, DECLINED), separated by commas")
	resolvedFrom := fs.String("resolved-from", "", "only VALID or DECLINED from this resolution date on (YYYY-MM-DD)")
	resolvedTo := fs.String("resolved-to", "", "only VALID or DECLINED up to this resolution date, included (YYYY-MM-DD)")
	since := fs.String("since", "", "only those whose status changed since this RFC 3339 time")
	atFlag := fs.String("at", "", "the clock for Age in days and Overdue, an RFC 3339 time (default: now)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	const cmd = "export inquiries"
	if len(pos) > 0 {
		return usagef("export inquiries takes no arguments")
	}
	p, err := x.parse(cmd, report.InquiryStates)
	if err != nil {
		return err
	}
	if *x.brand == "" && p.partner == 0 {
		return usagef("export inquiries: --brand or --partner is required")
	}
	f := report.InquiryFilter{States: p.states, Partner: p.partner, Dates: p.dates}
	if f.Types, err = report.ParseStates(*types, report.InquiryTypes); err != nil {
		return usagef("export inquiries: --type: %v", err)
	}
	if f.Resolved, err = parseDateRange(cmd, "--resolved-from", *resolvedFrom, "--resolved-to", *resolvedTo); err != nil {
		return err
	}
	if *since != "" {
		if f.Since, err = time.Parse(time.RFC3339, *since); err != nil {
			return usagef("export inquiries: --since %q is not an RFC 3339 time such as 2026-11-01T00:00:00-05:00", *since)
		}
	}
	if f.Now, err = parseAt(cmd, *atFlag); err != nil {
		return err
	}
	for i := range e.cfg.Brands {
		b := &e.cfg.Brands[i]
		if *x.brand == "" || b.ID == *x.brand {
			f.Brands = append(f.Brands, report.BrandZone{Slug: b.ID, Location: b.Location()})
		}
	}
	if len(f.Brands) == 0 {
		_, err := e.cfg.Brand(*x.brand)
		return err
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	return report.ExportInquiries(ctx, l, f, p.format, e.stdout)
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
