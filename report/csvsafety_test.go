package report

import (
	"bytes"
	"encoding/csv"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// The property of every CSV returnsd writes, whoever reads it in a
// spreadsheet: no cell can start a formula. It is checked here for each CSV
// writer of the repository, with text from outside (a brand's cells and
// file names, a quarantine reason, a server's error, an inquiry's id) drawn
// at random from pieces that try to start one:
//
//   - result files and receipts (processors.ResultWriter, WriteReceipt), in
//     each delimiter and with a byte-order mark;
//   - the exports (actions, inquiries, balances: all written by table);
//   - the daily report's CSV (WriteCSV).
//
// A cell may start with - only as a plain number: one of returnsd's own
// signed amounts (csvsafe.Amount).

// pieces are what random text is made of: every character a formula can
// start with, the full-width forms, what hides it (spaces, line breaks,
// quotes), and ordinary text.
var pieces = []string{"=", "+", "-", "@", "\t", "\r", "\n", "\r\n", " ", "\u00a0", "＝", "＋", "－", "＠", "'", "\"",
	",", ";", "|", "a", "Z", "0", "9", ".", "\xff", "é", "(", ")", "!", "cmd|' /C calc'!A0", "HYPERLINK(\"x\")", "SUM(A1:A9)",
	"-1", "+1", "1e5", "DDE"}

func randomText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(6) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// randomAmount is a signed amount; abs the same, never negative.
func randomAmount(r *rand.Rand) money.Amount {
	return money.Amount(r.Int64N(2_000_000_00) - 1_000_000_00)
}

func abs(a money.Amount) money.Amount { return max(a, -a) }

// formulaStart and plainNumber judge a cell independently of csvsafe, so a
// mistake there cannot hide itself here: a cell whose first character, past
// spaces and line breaks, is = + - @ or a full-width one, or that starts with
// a tab or a carriage return, can start a formula, unless it is a plain number.
var (
	formulaStart = regexp.MustCompile(`^(?:[\t\r]|[ \n]*[=+\-@＝＋－＠])`)
	plainNumber  = regexp.MustCompile(`^-?[0-9]+(?:\.[0-9]+)?$`)
)

// checkCells parses a CSV written with comma and fails for each cell that
// can start a formula.
func checkCells(t *testing.T, writer string, data []byte, comma rune) {
	t.Helper()
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma, cr.FieldsPerRecord, cr.LazyQuotes = comma, -1, false
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s wrote CSV that does not parse: %v\n%q", writer, err, data)
		}
		for _, cell := range rec {
			if formulaStart.MatchString(cell) && !plainNumber.MatchString(cell) {
				t.Errorf("%s, record %d: the cell %q can start a formula", writer, line, cell)
			}
		}
	}
}

// writeEveryCSV writes the given text and amounts through each writer and
// checks every cell.
func writeEveryCSV(t *testing.T, r *rand.Rand) {
	t.Helper()
	text := func() string { return randomText(r) }

	for _, rf := range []processors.ResultFormat{{Comma: ','}, {Comma: ';', BOM: true}, {Comma: '\t'}, {Comma: '|', DecimalComma: true}} {
		var b bytes.Buffer
		header := []string{text(), text(), "ActionId"}
		w, err := processors.NewResultWriter(&b, header, rf)
		if err != nil {
			t.Fatal(err)
		}
		for line := 2; line < 5; line++ {
			a, p := abs(randomAmount(r)), abs(randomAmount(r))
			row := outcome.Row{Line: line, Outcome: outcome.Outcome(text()), Code: outcome.Code(text()), Message: text(),
				ActionID: r.Int64N(1000), OldAmount: &a, NewPayout: &p}
			if err := w.Write([]string{text(), text(), text(), text()}, row); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		checkCells(t, "the result file", b.Bytes(), rune(rf.Comma))

		b.Reset()
		err = processors.WriteReceipt(&b, rf, processors.Receipt{File: text(), FileID: 7, ReceivedAt: text(),
			Status: outcome.FileStatus(text()), Code: outcome.QuarantineCode(text()), Reason: text()})
		if err != nil {
			t.Fatal(err)
		}
		checkCells(t, "the receipt", b.Bytes(), rune(rf.Comma))
	}

	// The exports: every column of each, as ExportActions, ExportInquiries
	// and ExportBalances fill them.
	var b bytes.Buffer
	tm := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	amount := randomAmount(r)
	for _, ex := range []struct {
		cols []string
		row  []any
	}{
		{ActionColumns, []any{r.Int64N(1e15), text(), int64(1001), int64(301), text(), abs(amount), abs(amount), text(), &tm, nil, 3}},
		{InquiryColumns, []any{text(), int64(301), text(), nil, tm, &amount, nil, text(), tm, text(), text(), text(), int64(9), &tm, text()}},
		{BalanceColumns, []any{text(), text(), amount, r.IntN(9), abs(amount)}},
	} {
		b.Reset()
		tb := newTable(&b, FormatCSV, time.UTC, ex.cols)
		for range 3 {
			tb.write(ex.row...)
		}
		if err := tb.close(nil); err != nil {
			t.Fatal(err)
		}
		checkCells(t, "the export of "+ex.cols[0], b.Bytes(), ',')
	}

	// The report: every text a brand, a file or a source brings, and signed sums.
	rep := sampleReport()
	rep.Brands[0].Brand, rep.Brands[0].Name = text(), text()
	rep.Brands[0].Balance = randomAmount(r)
	rep.Brands[0].Changes[0].SaleAmount, rep.Brands[0].Changes[0].Operation = randomAmount(r), text()
	rep.Brands[0].Rows.ByCode[0].Code = outcome.Code(text())
	rep.Brands[0].Inquiries.Oldest.InquiryID = text()
	for i := range rep.Files {
		f := &rep.Files[i]
		f.Brand, f.Source, f.Name, f.Reason, f.Code = text(), text(), text(), text(), outcome.QuarantineCode(text())
		f.Status = outcome.FileStatus(text())
	}
	for i := range rep.FailingSources {
		rep.FailingSources[i].Name, rep.FailingSources[i].LastError = text(), text()
	}
	b.Reset()
	if err := WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	checkCells(t, "the report", b.Bytes(), ',')
}

func TestNoCSVCellCanStartAFormula(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		writeEveryCSV(t, r)
		if t.Failed() {
			return
		}
	}
}

// FuzzNoCSVCellCanStartAFormula runs the property with the fuzzer choosing
// the random source: make fuzz runs it longer.
func FuzzNoCSVCellCanStartAFormula(f *testing.F) {
	for _, seed := range []uint64{0, 1, 42, 1 << 40} {
		f.Add(seed, seed^0x9e3779b97f4a7c15)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		writeEveryCSV(t, rand.New(rand.NewPCG(a, b)))
	})
}
