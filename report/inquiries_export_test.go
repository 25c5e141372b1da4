package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/processors"
)

// inquiriesBundle is acme (New York) and globex (Berlin), both taking
// inquiries, acme with an automatic approval rule of 30 days.
func inquiriesBundle(t *testing.T) *testBundle {
	t.Helper()
	_, b := setup(t)
	thirty := 30
	err := b.l.SyncBrands(b.ctx, []ledger.Brand{
		{Slug: "acme", Name: "ACME Outdoor", Currency: "USD", Timezone: "America/New_York", LockingDays: &thirty,
			PayoutDelayDays: 15, InquiriesAccept: true, AutoApprove: &ledger.AutoApproveRule{After: config.MustParseDuration("30d")},
			Trackers: []ledger.Tracker{{ID: 1001, Name: "Online Sale", Kind: "SALE", PayoutPercent: "8.5"}}},
		{Slug: "globex", Name: "Globex Versand", Currency: "EUR", Timezone: "Europe/Berlin", PayoutDelayDays: 10,
			InquiriesAccept: true, ResolutionDeadline: config.MustParseDuration("2w"),
			Trackers: []ledger.Tracker{{ID: 2001, Name: "Bestellung", Kind: "SALE", PayoutPercent: "10"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *testBundle) submit(brand string, at time.Time, rows ...processors.Inquiry) {
	b.t.Helper()
	for i := range rows {
		rows[i].Line = i + 2
	}
	if _, err := b.l.ImportInquiries(b.ctx, ledger.ApplyParams{FileID: b.receive(brand, "cli", "inquiries.csv"), Brand: brand,
		Actor: "test", At: at}, iter(rows)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *testBundle) resolveInquiries(brand string, at time.Time, rows ...processors.InquiryResolution) {
	b.t.Helper()
	for i := range rows {
		rows[i].Line = i + 2
	}
	if _, err := b.l.ApplyInquiryResolutions(b.ctx, ledger.ApplyParams{FileID: b.receive(brand, "cli", "resolutions.csv"),
		Brand: brand, Actor: "test", At: at}, iter(rows)); err != nil {
		b.t.Fatal(err)
	}
}

// rowsOf reads a CSV export into one map a row, by column name.
func rowsOf(t *testing.T, out string) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], InquiryColumns) {
		t.Fatalf("header %q", recs[0])
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, c := range recs[0] {
			m[c] = r[i]
		}
		rows = append(rows, m)
	}
	return rows
}

func TestThePartnersInquiryList(t *testing.T) {
	t.Parallel()
	newYork, berlin := mustZone("America/New_York"), mustZone("Europe/Berlin")
	order := time.Date(2026, 9, 1, 10, 0, 0, 0, newYork)
	submitted := order.AddDate(0, 0, 2)
	inq := func(id string, partner int64, typ processors.InquiryType) processors.Inquiry {
		return processors.Inquiry{InquiryID: id, PartnerID: partner, Oid: "ORD-" + id, TrackerID: 1001,
			TransactionDate: order, SaleAmount: amt("100.00"), HasSaleAmount: true, Type: typ, SubmittedAt: submitted}
	}
	acme := []BrandZone{{Slug: "acme", Location: newYork}}

	t.Run("ItsColumnsAgeAndTheOverdueFlag", func(t *testing.T) {
		t.Parallel()
		b := inquiriesBundle(t)
		expected := inq("Q-1", 301, processors.InquiryUntracked)
		expected.ExpectedPayout, expected.HasExpected = amt("9.00"), true
		b.submit("acme", submitted, expected, inq("Q-2", 301, processors.InquiryIncorrect),
			inq("Q-3", 302, processors.InquiryIncorrect))
		resolved := submitted.AddDate(0, 0, 5)
		b.resolveInquiries("acme", resolved, processors.InquiryResolution{InquiryID: "Q-2", Status: processors.ResolutionValid,
			CustomerID: "C-77", Notes: "found it"})
		// 90 days after the submission: the open are past acme's 12 weeks.
		now := submitted.AddDate(0, 0, 90)
		out := b.export(func(w *bytes.Buffer) error {
			return ExportInquiries(b.ctx, b.l, InquiryFilter{Brands: acme, Now: now}, FormatCSV, w)
		})
		rows := rowsOf(t, out)
		if len(rows) != 3 {
			t.Fatalf("%d rows:\n%s", len(rows), out)
		}
		q1, q2 := rows[0], rows[1]
		for col, want := range map[string]string{"Inquiry Id": "Q-1", "Brand": "ACME Outdoor", "Partner": "301",
			"Order Id": "ORD-Q-1", "Action Tracker": "1001", "Transaction Date": "2026-09-01T10:00:00-04:00",
			"Sale Amount": "100.00", "Expected Payout": "9.00", "Final Payout": "", "Type": "UNTRACKED", "Status": "NEW",
			"Submission Date": "2026-09-03T10:00:00-04:00", "Auto Approval Date": "2026-10-03T10:00:00-04:00",
			"Resolved Date": "", "Age in days": "90", "Overdue": "true", "ActionId": ""} {
			if q1[col] != want {
				t.Errorf("Q-1's %s is %q, want %q", col, q1[col], want)
			}
		}
		for col, want := range map[string]string{"Status": "VALID", "Final Payout": "8.50", "Resolution Notes": "found it",
			"Customer Id": "C-77", "Resolved Date": "2026-09-08T10:00:00-04:00", "Age in days": "5", "Overdue": "false",
			"Auto Approval Date": ""} {
			if q2[col] != want {
				t.Errorf("Q-2's %s is %q, want %q", col, q2[col], want)
			}
		}
		if q2["ActionId"] == "" {
			t.Error("Q-2 names no action")
		}
		// A day short of 12 weeks, nothing is overdue yet.
		out = b.export(func(w *bytes.Buffer) error {
			return ExportInquiries(b.ctx, b.l, InquiryFilter{Brands: acme, Now: submitted.AddDate(0, 0, 83)}, FormatJSON, w)
		})
		var objs []map[string]any
		if err := json.Unmarshal([]byte(out), &objs); err != nil {
			t.Fatal(err)
		}
		if objs[0]["Overdue"] != false || objs[0]["Age in days"] != float64(83) || objs[0]["Partner"] != float64(301) ||
			objs[1]["Final Payout"] != "8.50" || objs[0]["Final Payout"] != nil {
			t.Errorf("JSON: %v", objs[:2])
		}
	})

	t.Run("FiltersByTypeResolutionDateAndWhatChangedSince", func(t *testing.T) {
		t.Parallel()
		b := inquiriesBundle(t)
		b.submit("acme", submitted, inq("Q-1", 301, processors.InquiryUntracked), inq("Q-2", 301, processors.InquiryIncorrect),
			inq("Q-3", 302, processors.InquiryIncorrect))
		b.resolveInquiries("acme", time.Date(2026, 9, 10, 23, 30, 0, 0, newYork), // Sep 11 in UTC
			processors.InquiryResolution{InquiryID: "Q-2", Status: processors.ResolutionDeclined, Reason: processors.DeclineReasons[5]})
		since := time.Now()
		b.resolveInquiries("acme", time.Date(2026, 9, 12, 9, 0, 0, 0, newYork),
			processors.InquiryResolution{InquiryID: "Q-3", Status: processors.ResolutionIncomplete})
		ids := func(f InquiryFilter) []string {
			f.Brands = acme
			return column(t, b.export(func(w *bytes.Buffer) error { return ExportInquiries(b.ctx, b.l, f, FormatCSV, w) }), "Inquiry Id")
		}
		if got := ids(InquiryFilter{Types: []string{"INCORRECT"}}); !slices.Equal(got, []string{"Q-2", "Q-3"}) {
			t.Errorf("INCORRECT: %q", got)
		}
		// Resolved on Sep 10 in New York; Q-3 is INCOMPLETE, not resolved.
		if got := ids(InquiryFilter{Resolved: DateRange{From: Date{2026, 9, 10}, To: Date{2026, 9, 10}}}); !slices.Equal(got, []string{"Q-2"}) {
			t.Errorf("resolved on Sep 10: %q", got)
		}
		if got := ids(InquiryFilter{Resolved: DateRange{From: Date{2026, 9, 11}}}); len(got) != 0 {
			t.Errorf("resolved from Sep 11: %q", got)
		}
		if got := ids(InquiryFilter{Since: since}); !slices.Equal(got, []string{"Q-3"}) {
			t.Errorf("changed since the second file: %q", got)
		}
		if got := ids(InquiryFilter{Partner: 301, States: []string{"NEW"}}); !slices.Equal(got, []string{"Q-1"}) {
			t.Errorf("partner 301's NEW: %q", got)
		}
	})

	t.Run("APartnersStatusFileCoversEveryBrandEachInItsZone", func(t *testing.T) {
		t.Parallel()
		b := inquiriesBundle(t)
		b.submit("acme", submitted, inq("A-1", 301, processors.InquiryUntracked), inq("A-2", 302, processors.InquiryUntracked))
		g := inq("G-1", 301, processors.InquiryUntracked)
		g.TrackerID, g.SaleAmount = 2001, money.Amount(5000)
		b.submit("globex", submitted, g)
		out := b.export(func(w *bytes.Buffer) error {
			return ExportInquiries(b.ctx, b.l, InquiryFilter{Brands: []BrandZone{{"acme", newYork}, {"globex", berlin}},
				Partner: 301, Now: submitted.AddDate(0, 0, 20)}, FormatCSV, w)
		})
		rows := rowsOf(t, out)
		if len(rows) != 2 || rows[0]["Inquiry Id"] != "A-1" || rows[1]["Inquiry Id"] != "G-1" {
			t.Fatalf("partner 301's file:\n%s", out)
		}
		if rows[0]["Submission Date"] != "2026-09-03T10:00:00-04:00" || rows[1]["Submission Date"] != "2026-09-03T16:00:00+02:00" ||
			rows[1]["Brand"] != "Globex Versand" {
			t.Errorf("each brand's row in its zone: %v / %v", rows[0], rows[1])
		}
		// Globex's deadline is 2 weeks: its inquiry is overdue, acme's (12 weeks) not.
		if rows[0]["Overdue"] != "false" || rows[1]["Overdue"] != "true" {
			t.Errorf("Overdue: acme %s, globex %s", rows[0]["Overdue"], rows[1]["Overdue"])
		}
	})
}
