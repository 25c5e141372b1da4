package report

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/returnsd/returnsd/ledger"
)

// The exports write the ledger's current state by the one CSV and JSON
// convention of table (docs/report.md). Their columns are those the
// command line has always printed.

// ActionColumns are the columns of `export actions`.
var ActionColumns = []string{"ActionId", "Oid", "ActionTrackerId", "PartnerId", "State", "Amount", "Payout",
	"Currency", "LockDate", "PayoutDate", "ModificationCount"}

// InquiryColumns are the columns of `export inquiries`.
var InquiryColumns = []string{"Inquiry Id", "PartnerId", "Order Id", "Action Tracker", "Transaction Date",
	"Sale Amount", "Expected Payout", "Type", "Submission Date", "Status", "Resolution Reason", "Resolution Notes",
	"ActionId", "Resolved At", "Resolved By"}

// BalanceColumns are the columns of `export balances`.
var BalanceColumns = []string{"Brand", "Currency", "Balance", "DelayedPayouts", "DelayedAmount"}

// ActionStates and InquiryStates are what --state may name.
var (
	ActionStates  = []string{"PENDING", "APPROVED", "LOCKED", "PAID", "REVERSED"}
	InquiryStates = []string{"NEW", "INCOMPLETE", "VALID", "DECLINED"}
)

// ParseStates reads a --state value: states separated by commas, in any case.
// Each must be one of allowed; an empty value selects every state (nil).
func ParseStates(s string, allowed []string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		st := strings.ToUpper(strings.TrimSpace(part))
		if !slices.Contains(allowed, st) {
			return nil, fmt.Errorf("%q is not a state: %s", part, strings.Join(allowed, ", "))
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// DateRange is a range of calendar days, both ends included; a zero end is open.
type DateRange struct{ From, To Date }

// span is the range in loc: from From's start to the start of the day after To.
func (r DateRange) span(loc *time.Location) (from, to time.Time, err error) {
	if !r.From.IsZero() && !r.To.IsZero() && r.To.Before(r.From) {
		return from, to, fmt.Errorf("the range ends (%s) before it starts (%s)", r.To, r.From)
	}
	if !r.From.IsZero() {
		from = r.From.Start(loc)
	}
	if !r.To.IsZero() {
		to = r.To.AddDays(1).Start(loc)
	}
	return from, to, nil
}

// ActionFilter selects the actions of an export.
type ActionFilter struct {
	Brand    string         // the brand's slug; required
	Location *time.Location // the brand's zone: dates are read and written in it. Default: UTC.
	States   []string       // nil: every state
	Partner  int64          // 0: every partner
	Dates    DateRange      // on the event date, in Location
}

// ExportActions writes the actions f selects, in ActionId order.
func ExportActions(ctx context.Context, l *ledger.Ledger, f ActionFilter, format Format, w io.Writer) error {
	loc := orUTC(f.Location)
	from, to, err := f.Dates.span(loc)
	if err != nil {
		return fmt.Errorf("export actions: %w", err)
	}
	t := newTable(w, format, loc, ActionColumns)
	err = l.Actions(ctx, ledger.ActionQuery{Brand: f.Brand, States: f.States, Partner: f.Partner, From: from, To: to},
		func(a ledger.Action) error {
			t.write(a.ID, a.Oid, a.TrackerID, a.PartnerID, a.State, a.Amount, a.Payout, a.Currency,
				a.LockDate, a.PayoutDate, a.ModificationCount)
			return t.err
		})
	return t.close(err)
}

// InquiryFilter selects the inquiries of an export.
type InquiryFilter struct {
	Brand    string         // the brand's slug; required
	Location *time.Location // the brand's zone. Default: UTC.
	States   []string       // statuses; nil: every one
	Partner  int64          // 0: every partner
	Dates    DateRange      // on the submission date, in Location
}

// ExportInquiries writes the inquiries f selects and what became of them, in
// order of submission, for reconciliation with the partners' side.
func ExportInquiries(ctx context.Context, l *ledger.Ledger, f InquiryFilter, format Format, w io.Writer) error {
	loc := orUTC(f.Location)
	from, to, err := f.Dates.span(loc)
	if err != nil {
		return fmt.Errorf("export inquiries: %w", err)
	}
	t := newTable(w, format, loc, InquiryColumns)
	err = l.Inquiries(ctx, ledger.InquiryQuery{Brand: f.Brand, States: f.States, Partner: f.Partner, From: from, To: to},
		func(q ledger.Inquiry) error {
			t.write(q.InquiryID, q.PartnerID, q.Oid, optionalID(q.TrackerID), q.TransactionDate, q.SaleAmount,
				q.ExpectedPayout, q.Type, q.SubmittedAt, q.Status, q.ResolutionReason, q.ResolutionNotes,
				optionalID(q.ActionID), q.ResolvedAt, q.ResolvedBy)
			return t.err
		})
	return t.close(err)
}

// BalanceFilter selects the brands of a balances export.
type BalanceFilter struct {
	Brand string // "" for every brand
}

// ExportBalances writes each brand's balance and delayed payouts, by slug.
func ExportBalances(ctx context.Context, l *ledger.Ledger, f BalanceFilter, format Format, w io.Writer) error {
	balances, err := l.Balances(ctx)
	if err != nil {
		return err
	}
	t := newTable(w, format, time.UTC, BalanceColumns)
	found := f.Brand == ""
	for _, b := range balances {
		if f.Brand != "" && b.Brand != f.Brand {
			continue
		}
		found = true
		t.write(b.Brand, b.Currency, b.Balance, b.DelayedCount, b.DelayedAmount)
	}
	if !found {
		err = fmt.Errorf("export balances: %w %q", ledger.ErrUnknownBrand, f.Brand)
	}
	return t.close(err)
}

// optionalID is id, or nil (absent) for 0.
func optionalID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}
