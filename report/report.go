// Package report is the daily processing report (SPEC §7) and the ledger's
// exports. Build reads a day from the ledger (ledger.Activity: SQL aggregates
// in one snapshot) into a Report, plain data with exact amounts; WriteHTML,
// WriteCSV and WriteJSON render it, and know no SQL. Deliver mails a day's
// report once. ExportActions, ExportInquiries and ExportBalances write the
// ledger's current state by the same CSV and JSON conventions (docs/report.md).
//
// What a day is:
//
//   - A file belongs to the day it was received, in the report's zone, and
//     everything about it counts there: its status now, its rows, the amounts
//     they changed. A file received at 23:59 and applied at 00:01 is the earlier
//     day's. An archive split into files counts as those files.
//   - Locks, payouts, releases and deposits count on the day they happened;
//     inquiries on the day they were resolved (an inquiry resolved twice, first
//     INCOMPLETE, counts on the day of its latest resolution).
//   - Open inquiries, balances, delayed payouts and failing sources are as they
//     stand when the report is built (GeneratedAt), whatever the day.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// TrendDays is how many days the trend shows, ending with the report's day.
const TrendDays = 14

// OpenAgeDays are the bounds, in days, of the age groups of open inquiries:
// under 7 days, 7 to 14, 14 to 30, and 30 days or more.
var OpenAgeDays = []int{7, 14, 30}

// Params say which report Build makes.
type Params struct {
	// Day is the calendar day reported on. Required.
	Day Date
	// Location is the zone Day is read in and times are shown in. Default: UTC.
	// It must have a real name (not time.Local), so that a report names its zone.
	Location *time.Location
	// Brand limits the report to one brand (its slug). Default: every brand.
	Brand string
	// Now is the clock: when the report is built, what open inquiries' ages
	// and balances are as of. Default: time.Now.
	Now time.Time
	// SourceBrands maps each source's name to the brands it serves (see
	// SourceBrands). A report limited to a brand lists only the failing
	// sources that serve it, and none when this is nil.
	SourceBrands map[string][]string
}

// Report is what happened in the ledger on one day, overall and per brand.
type Report struct {
	Day         Date
	Location    *time.Location
	Start, End  time.Time // the day in Location: Start included, End not
	Brand       string    // the brand the report is limited to; "" for every brand
	GeneratedAt time.Time
	// Totals are every brand's (or Brand's) activity together. Amounts of
	// different currencies are never added: each is by currency.
	Totals Activity
	// Brands are the brands, by slug: all of them, or Brand.
	Brands []BrandReport
	// Files are the files received in the day, by id.
	Files []File
	// FailingSources are the sources whose polls fail now, or failed in the day.
	FailingSources []Source
	// Trend is the TrendDays days ending with Day, oldest first.
	Trend []TrendDay
}

// Activity is what happened to a set of brands in the day.
type Activity struct {
	Files     FileCounts
	Rows      RowCounts
	Changes   []Change // by currency, then operation
	Inquiries Inquiries
	Actions   Actions
}

// FileCounts count the files received in the day by their status now.
type FileCounts struct {
	Received    int
	Completed   int
	Duplicate   int // DUPLICATE_FILE: the same bytes were applied before
	Quarantined int
	Waiting     int // RECEIVED: not yet applied
	// QuarantinedByCode counts the quarantined files by code, most first.
	QuarantinedByCode []CodeCount
}

// CodeCount is how many files were quarantined with one code.
type CodeCount struct {
	Code  outcome.QuarantineCode
	Files int
}

// RowCounts count the rows of the day's completed files by outcome.
type RowCounts struct {
	Total, Applied, Rejected, Duplicate int
	// ByCode counts the rejected and duplicate rows by code, most first.
	ByCode []OutcomeCount
}

// OutcomeCount is how many rows ended with one outcome and code.
type OutcomeCount struct {
	Outcome outcome.Outcome
	Code    outcome.Code
	Rows    int
}

// Change is what the applied rows of one operation did to the sale amounts
// and payouts of one currency: the sums of new minus old (a created action's
// old amounts count as 0). A reversal's are negative.
type Change struct {
	Currency   string
	Operation  string // CREATE, MODIFY, REVERSE, APPROVE, RESTORE, RESET
	Rows       int
	SaleAmount money.Amount
	Payout     money.Amount
}

// Inquiries are what happened to partners' inquiries.
type Inquiries struct {
	Received int           // accepted from the day's inquiry imports
	Resolved []StatusCount // resolved in the day, by status
	Open     int           // open (NEW or INCOMPLETE) now
	// OpenByAge counts the open inquiries by age since submission, in the
	// groups of OpenAgeDays (len(OpenAgeDays)+1 counts, youngest first).
	OpenByAge []int
	// Oldest is the open inquiry submitted first; nil when none is open.
	Oldest *OpenInquiry
	// PastDeadline counts the open inquiries past their brand's resolution
	// deadline. Contracts have no such deadline yet: it stays nil until they
	// do, and the renderings show that it is not known.
	PastDeadline *int
}

// StatusCount is how many inquiries were resolved with one status.
type StatusCount struct {
	Status    string // VALID, DECLINED, INCOMPLETE
	Inquiries int
	Auto      int // of them, declined by auto-resolution
}

// OpenInquiry is one open inquiry.
type OpenInquiry struct {
	Brand       string
	InquiryID   string
	SubmittedAt time.Time
	Age         time.Duration // at GeneratedAt
}

// Actions are the lifecycle's work in the day: actions locked and paid.
type Actions struct {
	Locked   int
	Paid     int       // payouts booked
	Payouts  []Amounts // their sum, by currency
	Released int       // delayed payouts the funds came to cover
	Deposits int
	Funds    []Amounts // deposited, by currency
}

// Amounts is a sum of money in one currency.
type Amounts struct {
	Currency string
	Amount   money.Amount
}

// BrandReport is one brand's day and its funds now.
type BrandReport struct {
	Brand, Name, Currency string
	Activity
	Balance        money.Amount // negative while payouts wait for funds
	DelayedPayouts int          // payouts booked that the balance did not cover
	DelayedAmount  money.Amount
}

// File is one file received in the day.
type File struct {
	ID          int64
	Brand       string
	Source      string // the source's name, or "cli"
	Name        string
	Kind        string
	Status      outcome.FileStatus
	Code        outcome.QuarantineCode // QUARANTINED: why
	Reason      string                 // QUARANTINED and DUPLICATE_FILE: in words
	ReceivedAt  time.Time
	FinishedAt  time.Time // zero while waiting
	Rows        int
	Applied     int
	Rejected    int
	Duplicate   int
	Parent      int64 // the archive it came in; 0 for most
	DuplicateOf int64 // DUPLICATE_FILE: the file that applied the same bytes
}

// Source is a source whose polls fail now, or failed during the day.
type Source struct {
	Name         string
	Brands       []string // the brands it serves, when known
	Failures     int      // consecutive failed polls; 0 once it recovered
	LastError    string
	FailingSince time.Time // zero once it recovered
	LastFailure  time.Time
	NextAttempt  time.Time // backed off until then
	LastSuccess  time.Time // zero when it never succeeded
}

// Failing reports whether the source fails still.
func (s Source) Failing() bool { return s.Failures > 0 }

// TrendDay is one day of the trend: the files received and what their rows came to.
type TrendDay struct {
	Day                                      Date
	Files, Completed, Duplicate, Quarantined int
	Applied, Rejected, DuplicateRows         int
}

// Errors of Build.
var (
	ErrNoDay        = errors.New("report: no day given")
	ErrNamelessZone = errors.New("report: the zone has no name (time.Local): give a named zone such as Europe/Berlin")
)

// Build reads the day's report from the ledger.
func Build(ctx context.Context, l *ledger.Ledger, p Params) (*Report, error) {
	if p.Day.IsZero() {
		return nil, ErrNoDay
	}
	loc := cmp.Or(p.Location, time.UTC)
	if loc.String() == "Local" {
		return nil, ErrNamelessZone
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := &Report{Day: p.Day, Location: loc, Brand: p.Brand, GeneratedAt: now.In(loc)}
	r.Start, r.End = p.Day.span(loc)
	trend := make([]ledger.Span, TrendDays)
	for i := range trend {
		from, to := p.Day.AddDays(i - TrendDays + 1).span(loc)
		trend[i] = ledger.Span{From: from, To: to}
	}
	a, err := l.Activity(ctx, ledger.ActivityParams{Day: ledger.Span{From: r.Start, To: r.End}, Brand: p.Brand,
		Now: now, OpenAgeDays: OpenAgeDays, Trend: trend})
	if err != nil {
		return nil, fmt.Errorf("report of %s: %w", p.Day, err)
	}
	assemble(r, a, loc)
	for _, s := range a.Sources {
		brands := p.SourceBrands[s.Source]
		if p.Brand != "" && !slices.Contains(brands, p.Brand) {
			continue
		}
		r.FailingSources = append(r.FailingSources, Source{Name: s.Source, Brands: brands, Failures: s.Failures,
			LastError: s.LastError, FailingSince: in(s.FailingSince, loc), LastFailure: in(s.LastFailure, loc),
			NextAttempt: in(s.NextAttempt, loc), LastSuccess: in(s.LastSuccess, loc)})
	}
	for i, t := range a.Trend {
		r.Trend = append(r.Trend, TrendDay{Day: p.Day.AddDays(i - TrendDays + 1), Files: t.Files, Completed: t.Completed,
			Duplicate: t.Duplicate, Quarantined: t.Quarantined, Applied: t.Applied, Rejected: t.Rejected,
			DuplicateRows: t.DuplicateRows})
	}
	return r, nil
}

// actionOperations are the operations whose rows change actions, shown in Changes.
var actionOperations = []string{"CREATE", "MODIFY", "REVERSE", "APPROVE", "RESTORE", "RESET"}

// operationReceived is the operation of an accepted row of an inquiry import.
const operationReceived = "INQUIRY"

// assemble fills r's brands and totals from the ledger's activity.
func assemble(r *Report, a ledger.Activity, loc *time.Location) {
	brands := map[string]*BrandReport{}
	r.Brands = make([]BrandReport, len(a.Brands))
	for i, b := range a.Brands {
		r.Brands[i] = BrandReport{Brand: b.Brand, Name: b.Name, Currency: b.Currency, Balance: b.Balance,
			DelayedPayouts: b.DelayedPayouts, DelayedAmount: b.DelayedAmount}
		r.Brands[i].Inquiries.OpenByAge = make([]int, len(OpenAgeDays)+1)
		brands[b.Brand] = &r.Brands[i]
	}
	// Every list of the ledger is of brands it returned; a brand added between
	// its reads is left out rather than guessed.
	each := func(brand string, fn func(b *BrandReport)) {
		if b := brands[brand]; b != nil {
			fn(b)
		}
	}
	for _, f := range a.Files {
		r.Files = append(r.Files, File{ID: f.ID, Brand: f.Brand, Source: f.Source, Name: f.Name, Kind: f.Kind,
			Status: f.Status, Code: f.Code, Reason: f.Reason, ReceivedAt: in(f.ReceivedAt, loc),
			FinishedAt: in(f.FinishedAt, loc), Rows: f.Rows, Applied: f.Applied, Rejected: f.Rejected,
			Duplicate: f.Duplicate, Parent: f.Parent, DuplicateOf: f.DuplicateOf})
		each(f.Brand, func(b *BrandReport) { b.Files.count(f) })
	}
	for _, t := range a.Tallies {
		each(t.Brand, func(b *BrandReport) { b.Activity.tally(t, b.Currency) })
	}
	for _, e := range a.Events {
		each(e.Brand, func(b *BrandReport) { b.Actions.count(e, b.Currency) })
	}
	for _, q := range a.InquiriesResolved {
		each(q.Brand, func(b *BrandReport) {
			b.Inquiries.Resolved = append(b.Inquiries.Resolved, StatusCount{Status: q.Status, Inquiries: q.Inquiries, Auto: q.Auto})
		})
	}
	for _, o := range a.OpenInquiries {
		each(o.Brand, func(b *BrandReport) {
			b.Inquiries.Open = o.Open
			copy(b.Inquiries.OpenByAge, o.ByAge)
			if o.OldestID != "" {
				b.Inquiries.Oldest = &OpenInquiry{Brand: o.Brand, InquiryID: o.OldestID,
					SubmittedAt: o.OldestSubmittedAt.In(loc), Age: r.GeneratedAt.Sub(o.OldestSubmittedAt)}
			}
		})
	}
	r.Totals.Inquiries.OpenByAge = make([]int, len(OpenAgeDays)+1)
	for i := range r.Brands {
		b := &r.Brands[i]
		b.Activity.sort()
		r.Totals.add(&b.Activity)
	}
	r.Totals.sort()
}

func (c *FileCounts) count(f ledger.DayFile) {
	c.Received++
	switch f.Status {
	case outcome.Completed:
		c.Completed++
	case outcome.DuplicateFile:
		c.Duplicate++
	case outcome.Quarantined:
		c.Quarantined++
		addCode(&c.QuarantinedByCode, f.Code, 1)
	default:
		c.Waiting++
	}
}

func addCode(codes *[]CodeCount, code outcome.QuarantineCode, n int) {
	for i := range *codes {
		if (*codes)[i].Code == code {
			(*codes)[i].Files += n
			return
		}
	}
	*codes = append(*codes, CodeCount{Code: code, Files: n})
}

// tally counts one tally of the ledger: its rows by outcome and code, and
// what its applied rows changed.
func (a *Activity) tally(t ledger.Tally, currency string) {
	a.Rows.Total += t.Rows
	switch t.Outcome {
	case outcome.Applied:
		a.Rows.Applied += t.Rows
		switch {
		case t.Operation == operationReceived:
			a.Inquiries.Received += t.Rows
		case slices.Contains(actionOperations, t.Operation):
			a.addChange(Change{Currency: currency, Operation: t.Operation, Rows: t.Rows,
				SaleAmount: t.SaleAmountChange, Payout: t.PayoutChange})
		}
		return
	case outcome.Rejected:
		a.Rows.Rejected += t.Rows
	case outcome.DuplicateRow:
		a.Rows.Duplicate += t.Rows
	}
	addOutcome(&a.Rows.ByCode, OutcomeCount{Outcome: t.Outcome, Code: t.Code, Rows: t.Rows})
}

func addOutcome(counts *[]OutcomeCount, c OutcomeCount) {
	for i := range *counts {
		if (*counts)[i].Outcome == c.Outcome && (*counts)[i].Code == c.Code {
			(*counts)[i].Rows += c.Rows
			return
		}
	}
	*counts = append(*counts, c)
}

func (a *Activity) addChange(c Change) {
	for i := range a.Changes {
		if x := &a.Changes[i]; x.Currency == c.Currency && x.Operation == c.Operation {
			x.Rows += c.Rows
			x.SaleAmount += c.SaleAmount
			x.Payout += c.Payout
			return
		}
	}
	a.Changes = append(a.Changes, c)
}

func (ac *Actions) count(e ledger.EventCount, currency string) {
	switch e.Kind {
	case "LOCK":
		ac.Locked += e.Events
	case "PAY":
		ac.Paid += e.Events
		addAmount(&ac.Payouts, currency, -e.BalanceDelta)
	case "PAYOUT_RELEASED":
		ac.Released += e.Events
	case "DEPOSIT":
		ac.Deposits += e.Events
		addAmount(&ac.Funds, currency, e.BalanceDelta)
	}
}

func addAmount(sums *[]Amounts, currency string, a money.Amount) {
	for i := range *sums {
		if (*sums)[i].Currency == currency {
			(*sums)[i].Amount += a
			return
		}
	}
	*sums = append(*sums, Amounts{Currency: currency, Amount: a})
}

// add adds a brand's activity to the totals.
func (a *Activity) add(b *Activity) {
	f := &a.Files
	f.Received += b.Files.Received
	f.Completed += b.Files.Completed
	f.Duplicate += b.Files.Duplicate
	f.Quarantined += b.Files.Quarantined
	f.Waiting += b.Files.Waiting
	for _, c := range b.Files.QuarantinedByCode {
		addCode(&f.QuarantinedByCode, c.Code, c.Files)
	}
	a.Rows.Total += b.Rows.Total
	a.Rows.Applied += b.Rows.Applied
	a.Rows.Rejected += b.Rows.Rejected
	a.Rows.Duplicate += b.Rows.Duplicate
	for _, c := range b.Rows.ByCode {
		addOutcome(&a.Rows.ByCode, c)
	}
	for _, c := range b.Changes {
		a.addChange(c)
	}
	q := &a.Inquiries
	q.Received += b.Inquiries.Received
	for _, s := range b.Inquiries.Resolved {
		found := false
		for i := range q.Resolved {
			if q.Resolved[i].Status == s.Status {
				q.Resolved[i].Inquiries += s.Inquiries
				q.Resolved[i].Auto += s.Auto
				found = true
			}
		}
		if !found {
			q.Resolved = append(q.Resolved, s)
		}
	}
	q.Open += b.Inquiries.Open
	for i, n := range b.Inquiries.OpenByAge {
		q.OpenByAge[i] += n
	}
	if o := b.Inquiries.Oldest; o != nil && (q.Oldest == nil || o.SubmittedAt.Before(q.Oldest.SubmittedAt)) {
		q.Oldest = o
	}
	ac := &a.Actions
	ac.Locked += b.Actions.Locked
	ac.Paid += b.Actions.Paid
	ac.Released += b.Actions.Released
	ac.Deposits += b.Actions.Deposits
	for _, s := range b.Actions.Payouts {
		addAmount(&ac.Payouts, s.Currency, s.Amount)
	}
	for _, s := range b.Actions.Funds {
		addAmount(&ac.Funds, s.Currency, s.Amount)
	}
}

// sort puts every list in its documented order.
func (a *Activity) sort() {
	slices.SortFunc(a.Files.QuarantinedByCode, func(x, y CodeCount) int {
		return cmp.Or(cmp.Compare(y.Files, x.Files), cmp.Compare(x.Code, y.Code))
	})
	slices.SortFunc(a.Rows.ByCode, func(x, y OutcomeCount) int {
		return cmp.Or(cmp.Compare(y.Rows, x.Rows), cmp.Compare(x.Outcome, y.Outcome), cmp.Compare(x.Code, y.Code))
	})
	slices.SortFunc(a.Changes, func(x, y Change) int {
		return cmp.Or(cmp.Compare(x.Currency, y.Currency),
			cmp.Compare(slices.Index(actionOperations, x.Operation), slices.Index(actionOperations, y.Operation)))
	})
	slices.SortFunc(a.Inquiries.Resolved, func(x, y StatusCount) int { return cmp.Compare(x.Status, y.Status) })
	sortAmounts := func(s []Amounts) {
		slices.SortFunc(s, func(x, y Amounts) int { return cmp.Compare(x.Currency, y.Currency) })
	}
	sortAmounts(a.Actions.Payouts)
	sortAmounts(a.Actions.Funds)
}

// NegativeBalances are the brands whose balance is below zero, or whose
// payouts wait for funds.
func (r *Report) NegativeBalances() []BrandReport {
	var out []BrandReport
	for _, b := range r.Brands {
		if b.Balance < 0 || b.DelayedPayouts > 0 {
			out = append(out, b)
		}
	}
	return out
}

// in is t in loc, and the zero time for the zero time.
func in(t time.Time, loc *time.Location) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(loc)
}

// SourceBrands maps each source of cfg to the brands it serves: its brand,
// or for an imap source the brands of its routes.
func SourceBrands(cfg *config.Config) map[string][]string {
	m := make(map[string][]string, len(cfg.Sources))
	for _, s := range cfg.Sources {
		var brands []string
		if s.Brand != "" {
			brands = append(brands, s.Brand)
		}
		for _, r := range s.Routes {
			if !slices.Contains(brands, r.Brand) {
				brands = append(brands, r.Brand)
			}
		}
		m[s.Name] = brands
	}
	return m
}
