package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/internal/csvsafe"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/processors"
)

func (b *testBundle) export(write func(*bytes.Buffer) error) string {
	b.t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		b.t.Fatal(err)
	}
	return buf.String()
}

// column is one column of a CSV export, below its header.
func column(t *testing.T, out, name string) []string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(recs[0], name)
	if i < 0 {
		t.Fatalf("no column %s in %q", name, recs[0])
	}
	var out2 []string
	for _, r := range recs[1:] {
		out2 = append(out2, r[i])
	}
	return out2
}

func TestExportActions(t *testing.T) {
	t.Parallel()
	newYork := mustZone("America/New_York")
	on := func(id int64, partner int64, at time.Time) processors.ActionRecord {
		a := sale(id, "100.00")
		a.PartnerID, a.EventDate = partner, at
		return a
	}
	setupActions := func(t *testing.T) *testBundle {
		_, b := setup(t)
		b.load("acme",
			on(5001, 301, time.Date(2026, 11, 1, 12, 0, 0, 0, newYork)),
			// 23:30 in New York on Nov 2 is Nov 3 in UTC: the brand's day counts.
			on(5002, 302, time.Date(2026, 11, 2, 23, 30, 0, 0, newYork)),
			on(5003, 301, time.Date(2026, 11, 3, 0, 30, 0, 0, newYork)),
			on(5004, 301, time.Date(2026, 11, 4, 9, 0, 0, 0, newYork)))
		b.update("acme", "cli", reverse(5003))
		return b
	}
	export := func(b *testBundle, f ActionFilter, format Format) string {
		f.Brand, f.Location = "acme", newYork
		return b.export(func(w *bytes.Buffer) error { return ExportActions(b.ctx, b.l, f, format, w) })
	}

	t.Run("FiltersByStatePartnerAndEventDateInTheBrandsZone", func(t *testing.T) {
		t.Parallel()
		b := setupActions(t)
		for _, c := range []struct {
			name string
			f    ActionFilter
			want []string
		}{
			{"Everything", ActionFilter{}, []string{"5001", "5002", "5003", "5004"}},
			{"State", ActionFilter{States: []string{"REVERSED"}}, []string{"5003"}},
			{"States", ActionFilter{States: []string{"PENDING", "REVERSED"}}, []string{"5001", "5002", "5003", "5004"}},
			{"Partner", ActionFilter{Partner: 302}, []string{"5002"}},
			{"FromIncluded", ActionFilter{Dates: DateRange{From: Date{2026, 11, 2}}}, []string{"5002", "5003", "5004"}},
			{"ToIncluded", ActionFilter{Dates: DateRange{To: Date{2026, 11, 2}}}, []string{"5001", "5002"}},
			{"OneDay", ActionFilter{Dates: DateRange{From: Date{2026, 11, 3}, To: Date{2026, 11, 3}}}, []string{"5003"}},
			{"Together", ActionFilter{States: []string{"PENDING"}, Partner: 301, Dates: DateRange{From: Date{2026, 11, 2}}}, []string{"5004"}},
		} {
			if got := column(t, export(b, c.f, FormatCSV), "ActionId"); !slices.Equal(got, c.want) {
				t.Errorf("%s: %q, want %q", c.name, got, c.want)
			}
		}
		_, err := func() (string, error) {
			var w bytes.Buffer
			err := ExportActions(b.ctx, b.l, ActionFilter{Brand: "acme", Dates: DateRange{From: Date{2026, 11, 3}, To: Date{2026, 11, 2}}}, FormatCSV, &w)
			return w.String(), err
		}()
		if err == nil {
			t.Error("a range that ends before it starts was exported")
		}
	})

	t.Run("JSONHasTheCSVsColumnsInOrderAndNullForWhatIsAbsent", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		b.load("globex", globexSale(7001, "50.00")) // open-ended: no lock or payout date
		out := b.export(func(w *bytes.Buffer) error {
			return ExportActions(b.ctx, b.l, ActionFilter{Brand: "globex", Location: mustZone("Europe/Berlin")}, FormatJSON, w)
		})
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || lines[0] != "[" || lines[2] != "]" {
			t.Fatalf("not one object per line:\n%s", out)
		}
		var keys []string
		dec := json.NewDecoder(strings.NewReader(lines[1]))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		if !slices.Equal(keys, ActionColumns) {
			t.Errorf("keys %q, want %q in that order", keys, ActionColumns)
		}
		if !strings.Contains(lines[1], `"LockDate":null,"PayoutDate":null`) || !strings.Contains(lines[1], `"Amount":"50.00"`) ||
			!strings.Contains(lines[1], `"ActionId":7001,`) {
			t.Errorf("object %s", lines[1])
		}
	})
}

func TestExportInquiries(t *testing.T) {
	t.Parallel()

	t.Run("FiltersByStatusPartnerAndSubmissionDate", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		newYork := mustZone("America/New_York")
		order := time.Date(2026, 11, 1, 10, 0, 0, 0, newYork)
		inq := func(id string, partner int64, submitted time.Time) processors.Inquiry {
			return processors.Inquiry{InquiryID: id, PartnerID: partner, Oid: "ORD-" + id, TrackerID: 1001,
				TransactionDate: order, Type: processors.InquiryUntracked, SubmittedAt: submitted}
		}
		rows := []processors.Inquiry{
			inq("=HYPERLINK(1)", 301, order.AddDate(0, 0, 2)),
			inq("INQ-2", 302, order.AddDate(0, 0, 3)),
			inq("INQ-3", 301, order.AddDate(0, 0, 4)),
		}
		for i := range rows {
			rows[i].Line = i + 2
		}
		file := b.receive("acme", "cli", "inquiries.csv")
		at := order.AddDate(0, 0, 10)
		if _, err := b.l.ImportInquiries(b.ctx, ledger.ApplyParams{FileID: file, Brand: "acme", Actor: "test", At: at}, iter(rows)); err != nil {
			t.Fatal(err)
		}
		export := func(f InquiryFilter, format Format) string {
			f.Brand, f.Location = "acme", newYork
			return b.export(func(w *bytes.Buffer) error { return ExportInquiries(b.ctx, b.l, f, format, w) })
		}

		if got := column(t, export(InquiryFilter{}, FormatCSV), "Inquiry Id"); !slices.Equal(got, []string{"'=HYPERLINK(1)", "INQ-2", "INQ-3"}) {
			t.Errorf("every inquiry, formula-safe: %q", got)
		}
		if got := column(t, export(InquiryFilter{Partner: 301, Dates: DateRange{From: Date{2026, 11, 4}}}, FormatCSV), "Inquiry Id"); !slices.Equal(got, []string{"INQ-3"}) {
			t.Errorf("partner 301 from Nov 4: %q", got)
		}
		if got := column(t, export(InquiryFilter{States: []string{"VALID"}}, FormatCSV), "Inquiry Id"); len(got) != 0 {
			t.Errorf("VALID: %q", got)
		}
		js := export(InquiryFilter{States: []string{"NEW"}, Dates: DateRange{To: Date{2026, 11, 3}}}, FormatJSON)
		var objs []map[string]any
		if err := json.Unmarshal([]byte(js), &objs); err != nil {
			t.Fatal(err)
		}
		if len(objs) != 1 || objs[0]["Inquiry Id"] != "=HYPERLINK(1)" || objs[0]["ActionId"] != nil ||
			objs[0]["Resolved At"] != nil || objs[0]["Sale Amount"] != nil || objs[0]["Action Tracker"] != float64(1001) ||
			objs[0]["Submission Date"] != "2026-11-03T10:00:00-05:00" {
			t.Errorf("JSON (text as it is, absent values null): %v", objs)
		}
	})
}

func TestExportBalances(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	b.load("acme", processors.ActionRecord{ActionID: 5001, TrackerID: 1001, Oid: "O-1", Amount: amt("100.00"),
		Currency: "USD", EventDate: time.Now().AddDate(0, -3, 0)})
	if _, err := b.l.RunLifecycle(b.ctx, time.Now()); err != nil {
		t.Fatal(err)
	}

	all := b.export(func(w *bytes.Buffer) error { return ExportBalances(b.ctx, b.l, BalanceFilter{}, FormatCSV, w) })
	one := b.export(func(w *bytes.Buffer) error {
		return ExportBalances(b.ctx, b.l, BalanceFilter{Brand: "acme"}, FormatJSON, w)
	})

	if want := "Brand,Currency,Balance,DelayedPayouts,DelayedAmount\nacme,USD,-8.50,1,8.50\nglobex,EUR,0.00,0,0.00\n"; all != want {
		t.Errorf("csv:\n%s\nwant:\n%s", all, want)
	}
	if want := "[\n{\"Brand\":\"acme\",\"Currency\":\"USD\",\"Balance\":\"-8.50\",\"DelayedPayouts\":1,\"DelayedAmount\":\"8.50\"}\n]\n"; one != want {
		t.Errorf("json:\n%s\nwant:\n%s", one, want)
	}
	var w bytes.Buffer
	if err := ExportBalances(b.ctx, b.l, BalanceFilter{Brand: "initech"}, FormatCSV, &w); !errors.Is(err, ledger.ErrUnknownBrand) {
		t.Errorf("an unknown brand: %v", err)
	}
	for _, c := range strings.FieldsFunc(all, func(r rune) bool { return r == ',' || r == '\n' }) {
		if !csvsafe.Safe(c) {
			t.Errorf("%q can start a formula", c)
		}
	}
}

func TestParseStates(t *testing.T) {
	if got, err := ParseStates(" pending,REVERSED,Pending ", ActionStates); err != nil || !slices.Equal(got, []string{"PENDING", "REVERSED"}) {
		t.Errorf("got %q, %v", got, err)
	}
	if got, err := ParseStates("", ActionStates); err != nil || got != nil {
		t.Errorf("empty: %q, %v", got, err)
	}
	if _, err := ParseStates("OPEN", InquiryStates); err == nil || !strings.Contains(err.Error(), "NEW, INCOMPLETE, VALID, DECLINED") {
		t.Errorf("an unknown state: %v", err)
	}
}
