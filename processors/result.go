package processors

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// ResultColumns are the columns the result file adds after the input's (SPEC §4).
var ResultColumns = []string{
	"Line", "Outcome", "ErrorCode", "Message", "ActionId",
	"OldAmount", "NewAmount", "OldPayout", "NewPayout",
}

// ResultWriter writes the result file a brand gets back: its own columns, then
// what happened to the row. The output is comma-separated UTF-8 without a BOM,
// CRLF line ends, every cell made safe by EscapeCell.
type ResultWriter struct {
	cw    *csv.Writer
	width int
	row   []string
}

// NewResultWriter writes the header: inputHeader, then ResultColumns.
func NewResultWriter(w io.Writer, inputHeader []string) (*ResultWriter, error) {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	rw := &ResultWriter{cw: cw, width: len(inputHeader)}
	row := make([]string, 0, len(inputHeader)+len(ResultColumns))
	for _, h := range inputHeader {
		row = append(row, EscapeCell(h))
	}
	row = append(row, ResultColumns...)
	if err := cw.Write(row); err != nil {
		return nil, fmt.Errorf("processors: write result header: %w", err)
	}
	return rw, nil
}

// Write writes one row: its input cells, cut or padded to the header's width so
// the result columns line up (values beyond the header are what made such a row
// MALFORMED_ROW), then its outcome.
func (w *ResultWriter) Write(fields []string, r outcome.Row) error {
	row := w.row[:0]
	for i := 0; i < w.width; i++ {
		v := ""
		if i < len(fields) {
			v = fields[i]
		}
		row = append(row, EscapeCell(v))
	}
	actionID := ""
	if r.ActionID != 0 {
		actionID = strconv.FormatInt(r.ActionID, 10)
	}
	row = append(row,
		strconv.Itoa(r.Line),
		string(r.Outcome),
		string(r.Code),
		EscapeCell(r.Message),
		actionID,
		formatAmount(r.OldAmount),
		formatAmount(r.NewAmount),
		formatAmount(r.OldPayout),
		formatAmount(r.NewPayout),
	)
	w.row = row
	if err := w.cw.Write(row); err != nil {
		return fmt.Errorf("processors: write result row %d: %w", r.Line, err)
	}
	return nil
}

// Flush writes what is buffered and reports any error of an earlier Write.
func (w *ResultWriter) Flush() error {
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		return fmt.Errorf("processors: write result file: %w", err)
	}
	return nil
}

func formatAmount(a *money.Amount) string {
	if a == nil {
		return ""
	}
	return EscapeCell(a.String())
}

// EscapeCell defuses a cell that a spreadsheet would run as a formula (CSV
// injection): one starting with = + - @, a tab or a carriage return gets a leading
// apostrophe, which Excel and LibreOffice show as text and do not display.
func EscapeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
