package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// WriteJSON writes the report as one JSON object. Its field names are stable
// (snake_case, documented in docs/report.md); amounts are decimal strings
// ("-20.00") so no reader makes floats of them; times are RFC 3339 in the
// report's zone; a list with nothing in it is [], never null; a value not
// known is null (past_deadline, until contracts have a resolution deadline).
func WriteJSON(w io.Writer, r *Report) error {
	v := jsonReport{
		Day: r.Day.String(), Timezone: r.Location.String(), Start: jsonTime(r.Start, r.Location),
		End: jsonTime(r.End, r.Location), Brand: r.Brand, GeneratedAt: jsonTime(r.GeneratedAt, r.Location),
		OpenAgeGroups: ageGroups(), Totals: jsonActivityOf(&r.Totals, r.Location),
		Brands: []jsonBrand{}, Files: []jsonFile{}, FailingSources: []jsonSource{}, Trend: []jsonTrendDay{},
	}
	for i := range r.Brands {
		b := &r.Brands[i]
		v.Brands = append(v.Brands, jsonBrand{Brand: b.Brand, Name: b.Name, Currency: b.Currency,
			jsonActivity: jsonActivityOf(&b.Activity, r.Location), Balance: b.Balance.String(),
			DelayedPayouts: b.DelayedPayouts, DelayedAmount: b.DelayedAmount.String()})
	}
	for _, f := range r.Files {
		v.Files = append(v.Files, jsonFile{ID: f.ID, Brand: f.Brand, Source: f.Source, Name: f.Name, Kind: f.Kind,
			Status: string(f.Status), Code: string(f.Code), Reason: f.Reason, ReceivedAt: jsonTime(f.ReceivedAt, r.Location),
			FinishedAt: optTime(f.FinishedAt, r.Location), Rows: f.Rows, Applied: f.Applied, Rejected: f.Rejected,
			Duplicate: f.Duplicate, Parent: optID(f.Parent), DuplicateOf: optID(f.DuplicateOf)})
	}
	for _, s := range r.FailingSources {
		brands := s.Brands
		if brands == nil {
			brands = []string{}
		}
		v.FailingSources = append(v.FailingSources, jsonSource{Name: s.Name, Brands: brands, Failing: s.Failing(),
			Failures: s.Failures, LastError: s.LastError, FailingSince: optTime(s.FailingSince, r.Location),
			LastFailure: optTime(s.LastFailure, r.Location), NextAttempt: optTime(s.NextAttempt, r.Location),
			LastSuccess: optTime(s.LastSuccess, r.Location)})
	}
	for _, d := range r.Trend {
		v.Trend = append(v.Trend, jsonTrendDay{Day: d.Day.String(), Files: d.Files, Completed: d.Completed,
			Duplicate: d.Duplicate, Quarantined: d.Quarantined, RowsApplied: d.Applied, RowsRejected: d.Rejected,
			RowsDuplicate: d.DuplicateRows})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("report: write JSON: %w", err)
	}
	return nil
}

type jsonReport struct {
	Day            string         `json:"day"`
	Timezone       string         `json:"timezone"`
	Start          string         `json:"start"`
	End            string         `json:"end"`
	Brand          string         `json:"brand"`
	GeneratedAt    string         `json:"generated_at"`
	OpenAgeGroups  []string       `json:"open_age_groups"`
	Totals         jsonActivity   `json:"totals"`
	Brands         []jsonBrand    `json:"brands"`
	Files          []jsonFile     `json:"files"`
	FailingSources []jsonSource   `json:"failing_sources"`
	Trend          []jsonTrendDay `json:"trend"`
}

type jsonActivity struct {
	Files     jsonFileCounts `json:"files"`
	Rows      jsonRowCounts  `json:"rows"`
	Changes   []jsonChange   `json:"changes"`
	Inquiries jsonInquiries  `json:"inquiries"`
	Actions   jsonActions    `json:"actions"`
}

type jsonFileCounts struct {
	Received          int             `json:"received"`
	Completed         int             `json:"completed"`
	Duplicate         int             `json:"duplicate"`
	Quarantined       int             `json:"quarantined"`
	Waiting           int             `json:"waiting"`
	QuarantinedByCode []jsonCodeCount `json:"quarantined_by_code"`
}

type jsonCodeCount struct {
	Code  string `json:"code"`
	Files int    `json:"files"`
}

type jsonRowCounts struct {
	Total     int                `json:"total"`
	Applied   int                `json:"applied"`
	Rejected  int                `json:"rejected"`
	Duplicate int                `json:"duplicate"`
	ByCode    []jsonOutcomeCount `json:"by_code"`
}

type jsonOutcomeCount struct {
	Outcome string `json:"outcome"`
	Code    string `json:"code"`
	Rows    int    `json:"rows"`
}

type jsonChange struct {
	Currency   string `json:"currency"`
	Operation  string `json:"operation"`
	Rows       int    `json:"rows"`
	SaleAmount string `json:"sale_amount"`
	Payout     string `json:"payout"`
}

type jsonInquiries struct {
	Received     int               `json:"received"`
	Resolved     []jsonStatusCount `json:"resolved"`
	Open         int               `json:"open"`
	OpenByAge    []int             `json:"open_by_age"`
	Oldest       *jsonOpenInquiry  `json:"oldest_open"`
	PastDeadline *int              `json:"past_deadline"`
}

type jsonStatusCount struct {
	Status    string `json:"status"`
	Inquiries int    `json:"inquiries"`
	Auto      int    `json:"auto"`
}

type jsonOpenInquiry struct {
	Brand       string `json:"brand"`
	InquiryID   string `json:"inquiry_id"`
	SubmittedAt string `json:"submitted_at"`
	AgeDays     int    `json:"age_days"`
}

type jsonActions struct {
	Locked   int           `json:"locked"`
	Paid     int           `json:"paid"`
	Payouts  []jsonAmounts `json:"payouts"`
	Released int           `json:"released"`
	Deposits int           `json:"deposits"`
	Funds    []jsonAmounts `json:"deposited"`
}

type jsonAmounts struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

type jsonBrand struct {
	Brand    string `json:"brand"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
	jsonActivity
	Balance        string `json:"balance"`
	DelayedPayouts int    `json:"delayed_payouts"`
	DelayedAmount  string `json:"delayed_amount"`
}

type jsonFile struct {
	ID          int64   `json:"id"`
	Brand       string  `json:"brand"`
	Source      string  `json:"source"`
	Name        string  `json:"name"`
	Kind        string  `json:"kind"`
	Status      string  `json:"status"`
	Code        string  `json:"code"`
	Reason      string  `json:"reason"`
	ReceivedAt  string  `json:"received_at"`
	FinishedAt  *string `json:"finished_at"`
	Rows        int     `json:"rows"`
	Applied     int     `json:"applied"`
	Rejected    int     `json:"rejected"`
	Duplicate   int     `json:"duplicate"`
	Parent      *int64  `json:"parent"`
	DuplicateOf *int64  `json:"duplicate_of"`
}

type jsonSource struct {
	Name         string   `json:"name"`
	Brands       []string `json:"brands"`
	Failing      bool     `json:"failing"`
	Failures     int      `json:"failures"`
	LastError    string   `json:"last_error"`
	FailingSince *string  `json:"failing_since"`
	LastFailure  *string  `json:"last_failure"`
	NextAttempt  *string  `json:"next_attempt"`
	LastSuccess  *string  `json:"last_success"`
}

type jsonTrendDay struct {
	Day           string `json:"day"`
	Files         int    `json:"files"`
	Completed     int    `json:"completed"`
	Duplicate     int    `json:"duplicate"`
	Quarantined   int    `json:"quarantined"`
	RowsApplied   int    `json:"rows_applied"`
	RowsRejected  int    `json:"rows_rejected"`
	RowsDuplicate int    `json:"rows_duplicate"`
}

func jsonActivityOf(a *Activity, loc *time.Location) jsonActivity {
	v := jsonActivity{
		Files: jsonFileCounts{Received: a.Files.Received, Completed: a.Files.Completed, Duplicate: a.Files.Duplicate,
			Quarantined: a.Files.Quarantined, Waiting: a.Files.Waiting, QuarantinedByCode: []jsonCodeCount{}},
		Rows: jsonRowCounts{Total: a.Rows.Total, Applied: a.Rows.Applied, Rejected: a.Rows.Rejected,
			Duplicate: a.Rows.Duplicate, ByCode: []jsonOutcomeCount{}},
		Changes: []jsonChange{},
		Inquiries: jsonInquiries{Received: a.Inquiries.Received, Resolved: []jsonStatusCount{}, Open: a.Inquiries.Open,
			OpenByAge: a.Inquiries.OpenByAge, PastDeadline: a.Inquiries.PastDeadline},
		Actions: jsonActions{Locked: a.Actions.Locked, Paid: a.Actions.Paid, Payouts: amountsOf(a.Actions.Payouts),
			Released: a.Actions.Released, Deposits: a.Actions.Deposits, Funds: amountsOf(a.Actions.Funds)},
	}
	if v.Inquiries.OpenByAge == nil {
		v.Inquiries.OpenByAge = make([]int, len(OpenAgeDays)+1)
	}
	for _, c := range a.Files.QuarantinedByCode {
		v.Files.QuarantinedByCode = append(v.Files.QuarantinedByCode, jsonCodeCount{string(c.Code), c.Files})
	}
	for _, c := range a.Rows.ByCode {
		v.Rows.ByCode = append(v.Rows.ByCode, jsonOutcomeCount{string(c.Outcome), string(c.Code), c.Rows})
	}
	for _, c := range a.Changes {
		v.Changes = append(v.Changes, jsonChange{c.Currency, c.Operation, c.Rows, c.SaleAmount.String(), c.Payout.String()})
	}
	for _, s := range a.Inquiries.Resolved {
		v.Inquiries.Resolved = append(v.Inquiries.Resolved, jsonStatusCount{s.Status, s.Inquiries, s.Auto})
	}
	if o := a.Inquiries.Oldest; o != nil {
		v.Inquiries.Oldest = &jsonOpenInquiry{Brand: o.Brand, InquiryID: o.InquiryID,
			SubmittedAt: jsonTime(o.SubmittedAt, loc), AgeDays: int(o.Age / (24 * time.Hour))}
	}
	return v
}

func amountsOf(s []Amounts) []jsonAmounts {
	out := []jsonAmounts{}
	for _, a := range s {
		out = append(out, jsonAmounts{a.Currency, a.Amount.String()})
	}
	return out
}

func jsonTime(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.RFC3339) }

func optTime(t time.Time, loc *time.Location) *string {
	if t.IsZero() {
		return nil
	}
	s := jsonTime(t, loc)
	return &s
}

func optID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}
