package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

// lifecycle runs the lifecycle job once (SPEC §2): locks due actions, pays due
// payouts, releases delayed payouts the funds cover, for every brand.
func (e *env) lifecycle(ctx context.Context, args []string) error {
	fs, cfg := e.flags("lifecycle")
	atFlag := fs.String("at", "", "the clock, an RFC 3339 time (default: now)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("lifecycle takes no arguments")
	}
	at := time.Now()
	if *atFlag != "" {
		if at, err = time.Parse(time.RFC3339, *atFlag); err != nil {
			return usagef("lifecycle: --at %q is not an RFC 3339 time such as 2026-11-01T00:00:00-05:00", *atFlag)
		}
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	sum, err := l.RunLifecycle(ctx, at)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "lifecycle at %s\n", at.Format(time.RFC3339))
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "BRAND\tLOCKED\tPAID\tDELAYED\tRELEASED\tDEBITED\tBALANCE")
	for _, b := range sum.Brands {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\t%s %s\n", b.Brand, b.Locked, b.Paid, b.Delayed, b.Released,
			b.Debited, b.Balance, b.Currency)
	}
	return w.Flush()
}
