package main

import (
	"context"
	"fmt"
	"time"
)

// autoResolve is `returnsd inquiries auto-resolve [--brand B]`: decline open
// inquiries whose order is already tracked, for one brand or every brand whose
// contract auto-resolves. A brand whose contract does not is refused: its
// inquiries are for people to judge.
func (e *env) autoResolve(ctx context.Context, args []string) error {
	fs, cfg := e.flags("inquiries auto-resolve")
	brand := fs.String("brand", "", "one brand (default: every brand with contract.inquiries.auto_resolve)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("inquiries auto-resolve takes no arguments")
	}
	brands := e.cfg.AutoResolveBrands()
	if *brand != "" {
		b, err := e.cfg.Brand(*brand)
		if err != nil {
			return err
		}
		if !b.Contract.Inquiries.AutoResolve {
			return fmt.Errorf("brand %s does not auto-resolve inquiries (contract.inquiries.auto_resolve is false)", b.ID)
		}
		brands = []string{b.ID}
	}
	if len(brands) == 0 {
		fmt.Fprintln(e.stdout, "no brand auto-resolves inquiries")
		return nil
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	for _, b := range brands {
		res, err := l.AutoResolveInquiries(ctx, b, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: declined %d already tracked for the same partner, %d credited to another partner\n",
			res.Brand, res.Tracked, res.Other)
	}
	return nil
}
