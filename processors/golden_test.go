package processors

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// brandFixtures are realistic files as brands send them, in testdata/brands, with
// the file_format each brand's config would declare.
var brandFixtures = []struct {
	file   string
	format Format
}{
	{"acme_returns_bom.csv", Format{}},
	{"acme_returns.zip", Format{}},
	{"acme_returns.csv.gz", Format{}},
	{"globex_unicode_text.txt", Format{}},
	{"muller_cp1252.csv", Format{Encoding: "windows-1252", DecimalComma: true, Aliases: map[string]string{
		"Bestellnummer": "Oid", "Betrag": "Amount", "Währung": "CurrencyCode", "Grund": "Reason", "Notiz": "Note"}}},
	{"initech_sep_hint.csv", Format{DecimalComma: true}},
	{"hooli_pipe.txt", Format{}},
	{"vandelay_multiline.csv", Format{}},
	{"acme_actions.csv", Format{Location: time.FixedZone("EST", -5*3600)}},
	// Written by LibreOffice Calc (see testdata/libreoffice).
	{"acme_returns_libreoffice.xlsx", Format{}},
	{"acme_resolutions_libreoffice.xlsx", Format{}},
	{"acme_actions_libreoffice.xlsx", Format{Location: time.FixedZone("EST", -5*3600)}},
}

func TestGoldenBrandFiles(t *testing.T) {
	for _, fx := range brandFixtures {
		t.Run(fx.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "brands", fx.file))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, fx.file, renderFile(t, data, fx.file, fx.format))
		})
	}
	t.Run("generated.xlsx", func(t *testing.T) {
		data := workbook(t)
		checkGolden(t, "generated.xlsx", renderFile(t, data, "returns.xlsx", Format{}))
	})
	t.Run("generated.xlsx.zip", func(t *testing.T) {
		data := zipBytes(t, zipEntry{"returns.xlsx", workbook(t)})
		checkGolden(t, "generated.xlsx.zip", renderFile(t, data, "returns.zip", Format{}))
	})
}

// workbook is an .xlsx as a brand's spreadsheet saves it: typed cells, a computed
// amount with a float artifact, a skipped row, a date.
func workbook(t testing.TB) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.SetSheetRow(sheet, "A1", &[]any{"ActionId", "Order Id", "Action Tracker", "Sale Amount", "Reason", "Note", "Booked"}))
	must(f.SetSheetRow(sheet, "A2", &[]any{1000001, nil, nil, 12.499999999999998, "ORDER_UPDATE", "computed in Excel"}))
	must(f.SetSheetRow(sheet, "A3", &[]any{nil, "X-77", 1001, nil, "Returned", "=looks like a formula"}))
	// Row 4 is left empty, as brands leave gaps.
	must(f.SetSheetRow(sheet, "A5", &[]any{1000003, nil, nil, 0.1 + 0.2, "order update", 42}))
	must(f.SetSheetRow(sheet, "A6", &[]any{1000004, nil, nil, 1e7, "ORDER_UPDATE", true}))
	must(f.SetCellValue(sheet, "G2", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)))
	date, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	must(err)
	must(f.SetCellStyle(sheet, "G2", "G2", date))
	must(f.SetCellFormula(sheet, "D7", "=D2*2"))
	must(f.SetSheetRow(sheet, "A7", &[]any{1000005, nil, nil}))
	must(f.SetCellValue(sheet, "E7", "ORDER_UPDATE"))
	// A second sheet is ignored.
	_, err = f.NewSheet("Notes")
	must(err)
	must(f.SetCellValue("Notes", "A1", "not data"))
	var b bytes.Buffer
	must(f.Write(&b))
	return b.Bytes()
}

// renderFile reads a file as the pipeline would (detect the kind, validate every
// row) and renders what was read and the result file the brand would get, had
// every valid row been applied.
func renderFile(t testing.TB, data []byte, name string, f Format) string {
	t.Helper()
	var out strings.Builder
	tb, err := Open(bytes.NewReader(data), int64(len(data)), name, f, Limits{})
	if err != nil {
		return fmt.Sprintf("open: %v\n", err)
	}
	defer tb.Close()
	fmt.Fprintf(&out, "header: %q\n", tb.Header())
	kind, err := DetectKind(tb.Header(), f.Aliases)
	if err != nil {
		return out.String() + fmt.Sprintf("kind: %v\n", err)
	}
	fmt.Fprintf(&out, "kind: %s\n\n", kind)

	var result bytes.Buffer
	rf := tb.Dialect().ResultFormat(f)
	rw, err := NewResultWriter(&result, tb.Header(), rf)
	if err != nil {
		t.Fatal(err)
	}
	var end error
	switch kind {
	case ActionUpdates:
		r, err := NewActionUpdateReader(tb, f)
		if err != nil {
			return out.String() + fmt.Sprintf("reader: %v\n", err)
		}
		for {
			u, err := r.Next()
			if err != nil {
				end = err
				break
			}
			fmt.Fprintln(&out, describeUpdate(u))
			row := outcome.Row{Line: u.Line, Outcome: outcome.Applied, ActionID: u.ActionID}
			if u.Err != nil {
				row = outcome.Row{Line: u.Line, Outcome: outcome.Rejected, Code: u.Err.Code, Message: u.Err.Message}
			} else if u.HasAmount {
				row.NewAmount = &u.Amount
			}
			if err := rw.Write(r.Fields(), row); err != nil {
				t.Fatal(err)
			}
		}
	case Actions:
		r, err := NewActionRecordReader(tb, f)
		if err != nil {
			return out.String() + fmt.Sprintf("reader: %v\n", err)
		}
		for {
			a, err := r.Next()
			if err != nil {
				end = err
				break
			}
			fmt.Fprintln(&out, describeAction(a))
		}
	case InquiryResolutions:
		r, err := NewInquiryResolutionReader(tb, f)
		if err != nil {
			return out.String() + fmt.Sprintf("reader: %v\n", err)
		}
		for {
			q, err := r.Next()
			if err != nil {
				end = err
				break
			}
			fmt.Fprintln(&out, describeResolution(q))
		}
	default:
		t.Fatalf("no reader for %s", kind)
	}
	if !errors.Is(end, io.EOF) {
		fmt.Fprintf(&out, "stopped: %v\n", end)
	}
	if err := rw.Flush(); err != nil {
		t.Fatal(err)
	}
	if kind == ActionUpdates {
		fmt.Fprintf(&out, "\nresult file (%s):\n%s", describeResultFormat(rf),
			strings.ReplaceAll(decodeResult(t, result.Bytes(), rf), "\r\n", "⏎\n"))
	}
	return out.String()
}

func describeResultFormat(rf ResultFormat) string {
	enc := cmp.Or(rf.Encoding, "UTF-8")
	if rf.BOM {
		enc += " with BOM"
	}
	return fmt.Sprintf("delimiter %q, %s, decimal comma %v", rf.Comma, enc, rf.DecimalComma)
}

// decodeResult shows a result file's text as UTF-8, checking its BOM.
func decodeResult(t testing.TB, b []byte, rf ResultFormat) string {
	t.Helper()
	if rf.BOM {
		var ok bool
		if b, ok = bytes.CutPrefix(b, bomUTF8); !ok {
			t.Fatal("the result file lacks the BOM it should start with")
		}
	}
	if rf.Encoding == "" {
		return string(b)
	}
	e, err := lookupEncoding(rf.Encoding)
	if err != nil {
		t.Fatal(err)
	}
	text, err := e.NewDecoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

func describeUpdate(u ActionUpdate) string {
	if u.Err != nil {
		return fmt.Sprintf("line %d: REJECTED %s: %s", u.Line, u.Err.Code, u.Err.Message)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "line %d: %s", u.Line, u.Operation)
	if u.ActionID != 0 {
		fmt.Fprintf(&b, " action=%d", u.ActionID)
	} else {
		fmt.Fprintf(&b, " oid=%q tracker=%d", u.Oid, u.TrackerID)
	}
	fmt.Fprintf(&b, " reason=%s", u.Reason)
	if u.HasAmount {
		fmt.Fprintf(&b, " amount=%s", u.Amount)
	}
	if u.ReverseIfZero {
		b.WriteString(" reverse-if-zero")
	}
	for _, kv := range [][2]string{{"currency", u.Currency}, {"customer", u.CustomerStatus}, {"request", u.RequestID}, {"note", u.Note}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%q", kv[0], kv[1])
		}
	}
	return b.String()
}

func describeAction(a ActionRecord) string {
	if a.Err != nil {
		return fmt.Sprintf("line %d: REJECTED %s: %s", a.Line, a.Err.Code, a.Err.Message)
	}
	payout := "contract"
	if a.HasPayout {
		payout = a.Payout.String()
	}
	return fmt.Sprintf("line %d: action=%d partner=%d tracker=%d oid=%q date=%s amount=%s %s payout=%s state=%s",
		a.Line, a.ActionID, a.PartnerID, a.TrackerID, a.Oid, a.EventDate.UTC().Format(time.RFC3339),
		money.Amount(a.Amount), a.Currency, payout, a.State)
}

func describeResolution(q InquiryResolution) string {
	if q.Err != nil {
		return fmt.Sprintf("line %d: REJECTED %s: %s", q.Line, q.Err.Code, q.Err.Message)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "line %d: inquiry=%q %s", q.Line, q.InquiryID, q.Status)
	if q.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", q.Reason)
	}
	if !q.TransactionDate.IsZero() {
		fmt.Fprintf(&b, " date=%s", q.TransactionDate.UTC().Format(time.RFC3339))
	}
	if q.TrackerID != 0 {
		fmt.Fprintf(&b, " tracker=%d", q.TrackerID)
	}
	if q.HasFinalPayout {
		fmt.Fprintf(&b, " payout=%s", q.FinalPayout)
	}
	if q.HasSaleAmount {
		fmt.Fprintf(&b, " amount=%s", q.SaleAmount)
	}
	if q.Notes != "" {
		fmt.Fprintf(&b, " notes=%q", q.Notes)
	}
	return b.String()
}

// checkGolden compares got with testdata/golden/<name>.golden; -update rewrites it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run go test -update and review the diff)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
