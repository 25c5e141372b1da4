package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/internal/csvsafe"
	"github.com/returnsd/returnsd/outcome"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// checkGolden compares got with testdata/golden/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -run %s -update to write it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got %q\nwant %q\n(run with -update if the change is meant)", name, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length: %d lines, want %d (run with -update if the change is meant)", name, len(gl), len(wl))
	}
}

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func intp(n int) *int { return &n }

// sampleReport is a day of two brands in two currencies, with something in
// every section, and text a brand or a source controls that tries HTML,
// a formula and a line break.
func sampleReport() *Report {
	berlin := mustZone("Europe/Berlin")
	day := Date{2026, 11, 23}
	at := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, berlin) }
	acme := Activity{
		Files: FileCounts{Received: 4, Completed: 2, Duplicate: 1, Quarantined: 1,
			QuarantinedByCode: []CodeCount{{outcome.UnknownKind, 1}}},
		Rows: RowCounts{Total: 1250, Applied: 1200, Rejected: 45, Duplicate: 5, ByCode: []OutcomeCount{
			{outcome.Rejected, outcome.ActionNotFound, 40}, {outcome.DuplicateRow, outcome.DuplicateOperation, 5},
			{outcome.Rejected, outcome.ActionLocked, 5}}},
		Changes: []Change{
			{Currency: "USD", Operation: "MODIFY", Rows: 300, SaleAmount: -1234550, Payout: -104937},
			{Currency: "USD", Operation: "REVERSE", Rows: 850, SaleAmount: -9876500, Payout: -839503},
			{Currency: "USD", Operation: "APPROVE", Rows: 50},
		},
		Inquiries: Inquiries{Received: 7, Resolved: []StatusCount{{"DECLINED", 3, 2}, {"VALID", 2, 0}},
			Open: 4, OpenByAge: []int{1, 1, 1, 1},
			Oldest: &OpenInquiry{Brand: "acme", InquiryID: "INQ-9005", SubmittedAt: time.Date(2026, 10, 12, 9, 0, 0, 0, berlin),
				Age: 42*24*time.Hour + 22*time.Hour}},
		Actions: Actions{Locked: 120, Paid: 100, Payouts: []Amounts{{"USD", 85050}}, Deposits: 1, Funds: []Amounts{{"USD", 50000}}},
	}
	globex := Activity{
		Files: FileCounts{Received: 1, Waiting: 1},
		Changes: []Change{
			{Currency: "EUR", Operation: "CREATE", Rows: 10, SaleAmount: 99900, Payout: 9990},
		},
		Rows:      RowCounts{Total: 10, Applied: 10},
		Inquiries: Inquiries{OpenByAge: []int{0, 0, 0, 0}},
		Actions:   Actions{Released: 2},
	}
	r := &Report{
		Day: day, Location: berlin, Start: day.Start(berlin), End: day.AddDays(1).Start(berlin),
		GeneratedAt: time.Date(2026, 11, 24, 7, 0, 3, 0, berlin),
		Brands: []BrandReport{
			{Brand: "acme", Name: "ACME <Outdoor> & Co", Currency: "USD", Activity: acme, Balance: -120050, DelayedPayouts: 3, DelayedAmount: 120050},
			{Brand: "globex", Name: "Globex Versand", Currency: "EUR", Activity: globex, Balance: 1000000},
		},
		Files: []File{
			{ID: 1041, Brand: "acme", Source: "acme-sftp", Name: "returns_1123.csv", Kind: "action-updates", Status: outcome.Completed,
				ReceivedAt: at(6, 15), FinishedAt: at(6, 16), Rows: 1200, Applied: 1160, Rejected: 35, Duplicate: 5},
			{ID: 1042, Brand: "acme", Source: "acme-sftp", Name: "=HYPERLINK(\"http://evil.example\")<b>.csv", Kind: "action-updates",
				Status: outcome.Completed, ReceivedAt: at(9, 0), FinishedAt: at(9, 1), Rows: 50, Applied: 40, Rejected: 10},
			{ID: 1043, Brand: "acme", Source: "returns-inbox", Name: "credit notes.xlsx", Status: outcome.Quarantined,
				Code: outcome.UnknownKind, Reason: "no known kind has the columns \"Gutschrift\", <Betrag>", ReceivedAt: at(11, 30), FinishedAt: at(11, 30)},
			{ID: 1044, Brand: "acme", Source: "acme-sftp", Name: "returns_1123 (1).csv", Status: outcome.DuplicateFile,
				Reason: "the same bytes were applied as file 1041", ReceivedAt: at(12, 0), FinishedAt: at(12, 0), DuplicateOf: 1041},
			{ID: 1045, Brand: "globex", Source: "drop", Name: "rücksendungen.csv", Status: outcome.Received, ReceivedAt: at(23, 59)},
		},
		FailingSources: []Source{
			{Name: "globex-ftp", Brands: []string{"globex"}, Failures: 12, LastError: "ftp: dial tcp 203.0.113.7:21: i/o timeout\n<x>",
				FailingSince: at(3, 0), LastFailure: at(23, 0), NextAttempt: time.Date(2026, 11, 24, 0, 30, 0, 0, berlin),
				LastSuccess: time.Date(2026, 11, 23, 2, 45, 0, 0, berlin)},
			{Name: "acme-sftp", Brands: []string{"acme"}, LastError: "ssh: handshake failed: EOF", LastFailure: at(5, 0),
				LastSuccess: at(6, 15)},
		},
	}
	for i := range TrendDays {
		d := TrendDay{Day: day.AddDays(i - TrendDays + 1)}
		if i%5 != 3 { // some days without files
			d.Files, d.Completed, d.Quarantined, d.Applied, d.Rejected, d.DuplicateRows = 40+i, 38+i, 2, 120000+i*5000, 300*i, i
		}
		r.Trend = append(r.Trend, d)
	}
	last := &r.Trend[len(r.Trend)-1]
	*last = TrendDay{Day: day, Files: 5, Completed: 2, Duplicate: 1, Quarantined: 1, Applied: 1210, Rejected: 45, DuplicateRows: 5}
	r.Totals.Inquiries.OpenByAge = make([]int, len(OpenAgeDays)+1)
	for i := range r.Brands {
		r.Totals.add(&r.Brands[i].Activity)
	}
	r.Totals.sort()
	return r
}

func TestGoldenRenderings(t *testing.T) {
	r := sampleReport()
	for _, c := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"report.html", func(w io.Writer) error {
			return WriteHTML(w, r, HTMLOptions{FileURL: func(id int64) string { return "/files/" + strconv.FormatInt(id, 10) }})
		}},
		{"report_body.html", func(w io.Writer) error { return WriteHTMLBody(w, r, HTMLOptions{MaxFiles: 1}) }},
		{"report.csv", func(w io.Writer) error { return WriteCSV(w, r) }},
		{"report.json", func(w io.Writer) error { return WriteJSON(w, r) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.name, b.Bytes())
		})
	}
}

func TestHTML(t *testing.T) {
	r := sampleReport()
	var doc, body bytes.Buffer
	if err := WriteHTML(&doc, r, HTMLOptions{FileURL: func(id int64) string { return "javascript:alert(" + strconv.FormatInt(id, 10) + ")" }}); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTMLBody(&body, r, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	html := doc.String()

	t.Run("NeedsNothingButItself", func(t *testing.T) {
		for _, banned := range []string{"<script", "<style", "<link", "<img", "<iframe", " src=", "url(", "@import", " class="} {
			if strings.Contains(strings.ToLower(html), banned) {
				t.Errorf("the HTML has %q: a mail client would drop it or fetch something", banned)
			}
		}
		if n := strings.Count(html, "<table"); n < 10 {
			t.Errorf("%d tables", n)
		}
	})

	t.Run("EscapesWhatBrandsAndSourcesWrite", func(t *testing.T) {
		for _, raw := range []string{"<Outdoor>", "<b>.csv", "<Betrag>", "<x>"} {
			if strings.Contains(html, raw) {
				t.Errorf("%q is not escaped", raw)
			}
		}
		for _, escaped := range []string{"ACME &lt;Outdoor&gt; &amp; Co", "&lt;Betrag&gt;"} {
			if !strings.Contains(html, escaped) {
				t.Errorf("the HTML lacks %q", escaped)
			}
		}
		if strings.Contains(html, "javascript:") {
			t.Error("a javascript: link went through")
		}
	})

	t.Run("TheTrendChartIsWellFormedSVGWithABarPerDayAndSeries", func(t *testing.T) {
		svg := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindString(html)
		if svg == "" {
			t.Fatal("no <svg>")
		}
		dec := xml.NewDecoder(strings.NewReader(svg))
		rects := 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("the SVG is not well-formed XML: %v", err)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
				rects++
			}
		}
		// 6 legend squares; 11 days of completed and quarantined files, with
		// applied, rejected and duplicate rows (the first day only applied);
		// the report's day with all four kinds of file and three of rows.
		if want := 6 + 11*2 + 1 + 10*3 + 4 + 3; rects != want {
			t.Errorf("%d rects, want %d", rects, want)
		}
	})

	t.Run("TheBodyIsTheDocumentsBodyAlone", func(t *testing.T) {
		b := body.String()
		if strings.Contains(b, "<html") || strings.Contains(b, "<body") || strings.Contains(b, "<head") ||
			!strings.HasPrefix(b, "<div") {
			t.Errorf("the body starts %q", b[:min(80, len(b))])
		}
		var plain bytes.Buffer
		WriteHTML(&plain, r, HTMLOptions{})
		if !strings.Contains(plain.String(), b) {
			t.Error("the document does not hold the body as it is")
		}
	})

	t.Run("ThePastDeadlineSlotSaysItIsNotKnownYet", func(t *testing.T) {
		if !strings.Contains(html, `title="contracts have no resolution deadline yet">Past deadline`) {
			t.Error("no past-deadline column")
		}
		r := sampleReport()
		r.Brands[0].Inquiries.PastDeadline = intp(3)
		var b bytes.Buffer
		WriteHTMLBody(&b, r, HTMLOptions{})
		if !strings.Contains(b.String(), `<td style="text-align:right;padding:4px 10px;border-bottom:1px solid #eaeef2;vertical-align:top;white-space:nowrap;font-variant-numeric:tabular-nums;">3</td></tr>`) {
			t.Error("a known count past the deadline is not shown")
		}
	})
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != strings.Join(CSVColumns, ",") {
		t.Errorf("header %q", recs[0])
	}
	find := func(brand, section, item, code string) []string {
		for _, r := range recs[1:] {
			if r[2] == brand && r[3] == section && r[4] == item && r[5] == code {
				return r
			}
		}
		t.Errorf("no row %s/%s/%s/%s", brand, section, item, code)
		return make([]string, len(CSVColumns))
	}

	t.Run("EveryCellIsFormulaSafe", func(t *testing.T) {
		for i, r := range recs {
			for j, c := range r {
				if !csvsafe.Safe(c) {
					t.Errorf("row %d, %s: %q can start a formula", i+1, CSVColumns[j], c)
				}
			}
		}
		if r := find("acme", "file", `'=HYPERLINK("http://evil.example")<b>.csv`, "COMPLETED"); r[7] != "1042" {
			t.Errorf("the file named as a formula: %q", r)
		}
	})

	t.Run("NegativeAmountsStayNumbersWithTheirCurrency", func(t *testing.T) {
		if r := find("acme", "sale_amount_change", "REVERSE", ""); r[6] != "USD" || r[7] != "-98765.00" {
			t.Errorf("reversals: %q", r)
		}
		if r := find("", "sale_amount_change", "CREATE", ""); r[6] != "EUR" || r[7] != "999.00" {
			t.Errorf("the totals keep EUR apart: %q", r)
		}
		if r := find("acme", "balance", "balance", ""); r[7] != "-1200.50" {
			t.Errorf("balance: %q", r)
		}
	})

	t.Run("TimesAreRFC3339InTheReportsZone", func(t *testing.T) {
		if r := find("", "failing_source", "globex-ftp", ""); r[8] != "2026-11-23T03:00:00+01:00" || r[7] != "12" {
			t.Errorf("failing source: %q", r)
		}
		if r := find("acme", "oldest_open_inquiry", "INQ-9005", ""); r[7] != "42" || r[8] != "2026-10-12T09:00:00+02:00" {
			t.Errorf("oldest open inquiry: %q", r)
		}
	})
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&b)
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	get := func(path ...any) any {
		var cur any = v
		for _, p := range path {
			switch k := p.(type) {
			case string:
				cur = cur.(map[string]any)[k]
			case int:
				cur = cur.([]any)[k]
			}
		}
		return cur
	}
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"day"}, "2026-11-23"},
		{[]any{"timezone"}, "Europe/Berlin"},
		{[]any{"start"}, "2026-11-23T00:00:00+01:00"},
		{[]any{"totals", "rows", "rejected"}, json.Number("45")},
		{[]any{"brands", 0, "changes", 1, "sale_amount"}, "-98765.00"},
		{[]any{"brands", 0, "balance"}, "-1200.50"},
		{[]any{"brands", 0, "inquiries", "past_deadline"}, nil},
		{[]any{"brands", 1, "inquiries", "oldest_open"}, nil},
		{[]any{"brands", 1, "files", "quarantined_by_code"}, []any{}},
		{[]any{"files", 4, "finished_at"}, nil},
		{[]any{"files", 3, "duplicate_of"}, json.Number("1041")},
		{[]any{"failing_sources", 1, "failing"}, false},
		{[]any{"trend", 13, "rows_applied"}, json.Number("1210")},
	} {
		got := get(c.path...)
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(c.want)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("%v = %s, want %s", c.path, gotJSON, wantJSON)
		}
	}
}
