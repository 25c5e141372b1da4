package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/returnsd/returnsd/daemon"
	"github.com/returnsd/returnsd/ledger"
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

// autoApprove is `returnsd inquiries auto-approve [--brand B] [--at TIME]`:
// approve the NEW inquiries whose Auto Approval Date has come, for one brand or
// every brand with an automatic approval rule (its own or a partner's). A
// brand without a rule is refused.
func (e *env) autoApprove(ctx context.Context, args []string) error {
	fs, cfg := e.flags("inquiries auto-approve")
	brand := fs.String("brand", "", "one brand (default: every brand with an automatic approval rule)")
	atFlag := fs.String("at", "", "the clock, an RFC 3339 time (default: now)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("inquiries auto-approve takes no arguments")
	}
	at, err := parseAt("inquiries auto-approve", *atFlag)
	if err != nil {
		return err
	}
	brands := e.cfg.AutoApproveBrands()
	if *brand != "" {
		b, err := e.cfg.Brand(*brand)
		if err != nil {
			return err
		}
		if !b.HasAutoApproval() {
			return fmt.Errorf("brand %s has no automatic approval rule (contract.inquiries.auto_approve, or a partner's)", b.ID)
		}
		brands = []string{b.ID}
	}
	if len(brands) == 0 {
		fmt.Fprintln(e.stdout, "no brand approves inquiries automatically")
		return nil
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	for _, slug := range brands {
		res, err := l.AutoApproveInquiries(ctx, slug, at)
		if err != nil {
			return err
		}
		b, _ := e.cfg.Brand(slug)
		fmt.Fprintf(e.stdout, "%s: approved %d (%s %s; locked %d, paid %d, delayed %d at once); "+
			"waiting: %d over the monthly cap, %d whose order is tracked meanwhile\n",
			res.Brand, res.Approved, res.Payout, b.Currency, res.Locked, res.Paid, res.Delayed, res.Capped, res.Tracked)
	}
	return nil
}

// parseAt reads a command's --at: an RFC 3339 time, or now when empty.
func parseAt(cmd, s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return at, usagef("%s: --at %q is not an RFC 3339 time such as 2026-11-01T00:00:00-05:00", cmd, s)
	}
	return at, nil
}

// notify is `returnsd inquiries notify [--at TIME]`: mail partners the changes
// of their inquiries not yet told (the daemon does it every minute). A mail
// that fails ends the run with an error; it is tried again by a later run, a
// minute after the first failure and up to an hour apart after more.
func (e *env) notify(ctx context.Context, args []string) error {
	fs, cfg := e.flags("inquiries notify")
	atFlag := fs.String("at", "", "the clock, an RFC 3339 time (default: now)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("inquiries notify takes no arguments")
	}
	at, err := parseAt("inquiries notify", *atFlag)
	if err != nil {
		return err
	}
	if e.cfg.SMTP.IsZero() {
		return errors.New("inquiries notify: the config has no smtp section to mail partners through")
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	partners := daemon.NewPartnerMailer(&e.cfg.SMTP)
	sum, err := l.DeliverInquiryNotices(ctx, ledger.DeliverParams{At: at, Send: partners.Send})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "partners told of %d inquiry changes; %d still to tell\n", sum.Sent, sum.Pending)
	if sum.Failed > 0 {
		return fmt.Errorf("inquiries notify: a mail failed, tried again later: %w", sum.LastError)
	}
	return nil
}
