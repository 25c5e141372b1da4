package report

import (
	"io"
	"strconv"
	"time"
)

// CSVColumns are the columns of the report's CSV. It is one long table, a
// row per number, so a spreadsheet can filter and pivot it and a script
// needs no layout: see docs/report.md for every Section and Item.
//
//	Day       the report's day, YYYY-MM-DD
//	Timezone  the zone the day and times are in
//	Brand     a brand's slug; empty for the totals of every brand (and sources)
//	Section   what the row counts: files, rows, row_codes, sale_amount_change, ...
//	Item      which one of the section: received, APPLIED, MODIFY, a file's name, ...
//	Code      a row or quarantine code, a file's status, a trend measure
//	Currency  for an amount
//	Value     a count, or an amount (2 decimals, a leading minus when negative)
//	At        a time, RFC 3339 in Timezone
//	Detail    words: a reason, an error, an inquiry's id
var CSVColumns = []string{"Day", "Timezone", "Brand", "Section", "Item", "Code", "Currency", "Value", "At", "Detail"}

// WriteCSV writes the report as CSV, by the convention of the exports
// (docs/report.md): every text cell is formula-safe.
func WriteCSV(w io.Writer, r *Report) error {
	t := newTable(w, FormatCSV, r.Location, CSVColumns)
	c := csvReport{t: t, day: r.Day.String(), zone: r.Location.String()}
	c.activity("", &r.Totals)
	for i := range r.Brands {
		b := &r.Brands[i]
		c.activity(b.Brand, &b.Activity)
		c.row(b.Brand, "balance", "balance", "", b.Currency, b.Balance, nil, "")
		c.row(b.Brand, "balance", "delayed_payouts", "", "", b.DelayedPayouts, nil, "")
		c.row(b.Brand, "balance", "delayed_amount", "", b.Currency, b.DelayedAmount, nil, "")
	}
	for _, f := range r.Files {
		detail := f.Reason
		switch f.Status {
		case "COMPLETED":
			detail = "rows " + strconv.Itoa(f.Rows) + ": applied " + strconv.Itoa(f.Applied) + ", rejected " +
				strconv.Itoa(f.Rejected) + ", duplicate " + strconv.Itoa(f.Duplicate)
		case "QUARANTINED":
			detail = string(f.Code) + ": " + f.Reason
		}
		c.row(f.Brand, "file", f.Name, string(f.Status), "", f.ID, f.ReceivedAt, detail)
	}
	for _, s := range r.FailingSources {
		at := s.FailingSince
		if !s.Failing() {
			at = s.LastFailure
		}
		c.row("", "failing_source", s.Name, "", "", s.Failures, at, s.LastError)
	}
	for _, d := range r.Trend {
		day := d.Day.String()
		for _, m := range []struct {
			code string
			n    int
		}{
			{"files", d.Files}, {"completed", d.Completed}, {"duplicate", d.Duplicate}, {"quarantined", d.Quarantined},
			{"rows_applied", d.Applied}, {"rows_rejected", d.Rejected}, {"rows_duplicate", d.DuplicateRows},
		} {
			c.row("", "trend", day, m.code, "", m.n, nil, "")
		}
	}
	return t.close(nil)
}

type csvReport struct {
	t         *table
	day, zone string
}

// row writes one row; value is an int or a money.Amount, at a time.Time or nil.
func (c *csvReport) row(brand, section, item, code, currency string, value any, at any, detail string) {
	c.t.write(c.day, c.zone, brand, section, item, code, currency, value, at, detail)
}

// activity writes a brand's numbers, or with brand "" the totals'.
func (c *csvReport) activity(brand string, a *Activity) {
	f := a.Files
	for _, m := range []struct {
		item string
		n    int
	}{{"received", f.Received}, {"completed", f.Completed}, {"duplicate", f.Duplicate}, {"quarantined", f.Quarantined}, {"waiting", f.Waiting}} {
		c.row(brand, "files", m.item, "", "", m.n, nil, "")
	}
	for _, q := range f.QuarantinedByCode {
		c.row(brand, "quarantine_codes", "quarantined", string(q.Code), "", q.Files, nil, "")
	}
	rw := a.Rows
	for _, m := range []struct {
		item string
		n    int
	}{{"total", rw.Total}, {"applied", rw.Applied}, {"rejected", rw.Rejected}, {"duplicate", rw.Duplicate}} {
		c.row(brand, "rows", m.item, "", "", m.n, nil, "")
	}
	for _, o := range rw.ByCode {
		c.row(brand, "row_codes", string(o.Outcome), string(o.Code), "", o.Rows, nil, "")
	}
	for _, ch := range a.Changes {
		c.row(brand, "change_rows", ch.Operation, "", ch.Currency, ch.Rows, nil, "")
		c.row(brand, "sale_amount_change", ch.Operation, "", ch.Currency, ch.SaleAmount, nil, "")
		c.row(brand, "payout_change", ch.Operation, "", ch.Currency, ch.Payout, nil, "")
	}
	q := a.Inquiries
	c.row(brand, "inquiries", "received", "", "", q.Received, nil, "")
	for _, s := range q.Resolved {
		c.row(brand, "inquiries_resolved", s.Status, "", "", s.Inquiries, nil, "")
		if s.Auto > 0 {
			c.row(brand, "inquiries_auto_resolved", s.Status, "", "", s.Auto, nil, "")
		}
	}
	c.row(brand, "inquiries", "open", "", "", q.Open, nil, "")
	for i, g := range ageGroups() {
		c.row(brand, "open_inquiries_by_age", g, "", "", q.OpenByAge[i], nil, "")
	}
	if q.PastDeadline != nil {
		c.row(brand, "inquiries", "past_deadline", "", "", *q.PastDeadline, nil, "")
	}
	if o := q.Oldest; o != nil {
		c.row(brand, "oldest_open_inquiry", o.InquiryID, "", "", int(o.Age/(24*time.Hour)), o.SubmittedAt, "age in days")
	}
	ac := a.Actions
	for _, m := range []struct {
		item string
		n    int
	}{{"locked", ac.Locked}, {"paid", ac.Paid}, {"released", ac.Released}, {"deposits", ac.Deposits}} {
		c.row(brand, "actions", m.item, "", "", m.n, nil, "")
	}
	for _, s := range ac.Payouts {
		c.row(brand, "payouts", "paid", "", s.Currency, s.Amount, nil, "")
	}
	for _, s := range ac.Funds {
		c.row(brand, "funds", "deposited", "", s.Currency, s.Amount, nil, "")
	}
}
