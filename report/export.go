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
// convention of table (docs/report.md). The actions' and balances' columns are
// those the command line has always printed; the inquiries' are the partner's
// inquiry list (issue 12).

// ActionColumns are the columns of `export actions`.
var ActionColumns = []string{"ActionId", "Oid", "ActionTrackerId", "PartnerId", "State", "Amount", "Payout",
	"Currency", "LockDate", "PayoutDate", "ModificationCount"}

// InquiryColumns are the columns of `export inquiries`: those of the partner's
// inquiry list, then whether an open inquiry is past the brand's resolution
// deadline (Overdue) and the action a VALID one created.
var InquiryColumns = []string{"Inquiry Id", "Brand", "Partner", "Order Id", "Action Tracker", "Transaction Date",
	"Sale Amount", "Expected Payout", "Final Payout", "Type", "Status", "Resolution Reason", "Resolution Notes",
	"Submission Date", "Auto Approval Date", "Resolved Date", "Customer Id", "Age in days", "Overdue", "ActionId"}

// BalanceColumns are the columns of `export balances`.
var BalanceColumns = []string{"Brand", "Currency", "Balance", "DelayedPayouts", "DelayedAmount"}

// ActionStates and InquiryStates are what --state may name; InquiryTypes what --type may.
var (
	ActionStates  = []string{"PENDING", "APPROVED", "LOCKED", "PAID", "REVERSED"}
	InquiryStates = []string{"NEW", "INCOMPLETE", "VALID", "DECLINED"}
	InquiryTypes  = []string{"UNTRACKED", "INCORRECT", "DECLINED"}
)

// ParseStates reads a --state (or --type) value: names separated by commas, in
// any case. Each must be one of allowed; an empty value selects every one (nil).
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
	// Brands are the brands whose inquiries are written, each with its zone
	// (dates are read and written in it; nil is UTC), one after the other:
	// one for a brand's export, every brand for a partner's status file.
	Brands   []BrandZone
	States   []string  // statuses; nil: every one
	Types    []string  // types; nil: every one
	Partner  int64     // 0: every partner
	Dates    DateRange // on the submission date, in each brand's zone
	Resolved DateRange // on the resolution date (VALID or DECLINED only)
	Since    time.Time // only inquiries with a status change recorded since; zero: all
	// Now is the clock for Age in days and Overdue. Zero: now.
	Now time.Time
}

// BrandZone is a brand by its slug, and its timezone.
type BrandZone struct {
	Slug     string
	Location *time.Location
}

// ExportInquiries writes the inquiries f selects and what became of them, as
// the partner's inquiry list shows them, brand by brand in the order of f,
// each brand's in order of submission. Age in days counts calendar days in the
// brand's zone from the submission to the resolution, or to now while it is
// open; Overdue says an open inquiry is past the brand's resolution deadline.
func ExportInquiries(ctx context.Context, l *ledger.Ledger, f InquiryFilter, format Format, w io.Writer) error {
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	t := newTable(w, format, time.UTC, InquiryColumns)
	for _, bz := range f.Brands {
		loc := orUTC(bz.Location)
		from, to, err := f.Dates.span(loc)
		if err != nil {
			return t.close(fmt.Errorf("export inquiries: submission dates: %w", err))
		}
		resolvedFrom, resolvedTo, err := f.Resolved.span(loc)
		if err != nil {
			return t.close(fmt.Errorf("export inquiries: resolution dates: %w", err))
		}
		at := func(v any) any { return zoned(v, loc) }
		err = l.Inquiries(ctx, ledger.InquiryQuery{Brand: bz.Slug, States: f.States, Types: f.Types, Partner: f.Partner,
			From: from, To: to, ResolvedFrom: resolvedFrom, ResolvedTo: resolvedTo, ChangedSince: f.Since},
			func(q ledger.Inquiry) error {
				end := now
				if q.ResolvedAt != nil {
					end = *q.ResolvedAt
				}
				t.write(q.InquiryID, q.BrandName, q.PartnerID, q.Oid, optionalID(q.TrackerID), at(q.TransactionDate),
					q.SaleAmount, q.ExpectedPayout, q.FinalPayout, q.Type, q.Status, q.ResolutionReason,
					q.ResolutionNotes, at(q.SubmittedAt), at(q.AutoApprovalDate), at(q.ResolvedAt), q.CustomerID,
					daysBetween(q.SubmittedAt, end, loc), q.Deadline != nil && !now.Before(*q.Deadline),
					optionalID(q.ActionID))
				return t.err
			})
		if err != nil {
			return t.close(err)
		}
	}
	return t.close(nil)
}

// daysBetween counts the calendar days in loc from from's day to to's; 0 when
// to is not later.
func daysBetween(from, to time.Time, loc *time.Location) int {
	a, b := DateOf(from.In(loc)), DateOf(to.In(loc))
	days := int(time.Date(b.Year, b.Month, b.Day, 0, 0, 0, 0, time.UTC).Sub(
		time.Date(a.Year, a.Month, a.Day, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
	return max(days, 0)
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
