package processors

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"

	"github.com/returnsd/returnsd/internal/csvsafe"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// ResultColumns are the columns the result file adds after the input's (SPEC §4).
// One whose name the input's header already has (a brand's own "Line" column,
// say) is written as "Result" and its name: no header name appears twice.
var ResultColumns = []string{
	"Line", "Outcome", "ErrorCode", "Message", "ResultActionId",
	"OldAmount", "NewAmount", "OldPayout", "NewPayout",
}

// ResultWriter writes the result file a brand gets back: its own columns, then
// what happened to the row, every cell made safe by EscapeCell, CRLF line ends,
// in the ResultFormat its file calls for (see Dialect.ResultFormat).
type ResultWriter struct {
	cw     *csv.Writer
	enc    io.WriteCloser // the encoder, for a legacy encoding
	width  int
	format ResultFormat
	row    []string
}

// NewResultWriter writes the header: inputHeader, then ResultColumns.
func NewResultWriter(w io.Writer, inputHeader []string, rf ResultFormat) (*ResultWriter, error) {
	rw, err := newCSVOut(w, rf)
	if err != nil {
		return nil, err
	}
	rw.width = len(inputHeader)
	row := make([]string, 0, len(inputHeader)+len(ResultColumns))
	for _, h := range inputHeader {
		row = append(row, EscapeCell(h))
	}
	row = append(row, resultColumns(inputHeader)...)
	if err := rw.cw.Write(row); err != nil {
		return nil, fmt.Errorf("processors: write result header: %w", err)
	}
	return rw, nil
}

// newCSVOut starts a CSV file in rf's delimiter and encoding.
func newCSVOut(w io.Writer, rf ResultFormat) (*ResultWriter, error) {
	rw := &ResultWriter{format: rf}
	switch {
	case rf.Encoding != "":
		e, err := lookupEncoding(rf.Encoding)
		if err != nil {
			return nil, err
		}
		if !isUTF8(e) {
			// What the encoding cannot hold (our own messages are ASCII; the
			// brand's cells came in it) becomes its replacement character.
			rw.enc = transform.NewWriter(w, encoding.ReplaceUnsupported(e.NewEncoder()))
			w = rw.enc
		}
	case rf.BOM:
		if _, err := w.Write(bomUTF8); err != nil {
			return nil, fmt.Errorf("processors: write result file: %w", err)
		}
	}
	rw.cw = csv.NewWriter(w)
	rw.cw.UseCRLF = true
	if rf.Comma != 0 {
		rw.cw.Comma = rune(rf.Comma)
	}
	return rw, nil
}

// resultColumns are ResultColumns, renamed where inputHeader has the name.
func resultColumns(inputHeader []string) []string {
	taken := map[string]bool{}
	for _, h := range inputHeader {
		taken[strings.ToLower(strings.TrimSpace(h))] = true
	}
	out := make([]string, len(ResultColumns))
	for i, c := range ResultColumns {
		name := c
		for n := 1; taken[strings.ToLower(name)]; n++ {
			name = "Result" + c
			if n > 1 {
				name = fmt.Sprintf("Result%s%d", c, n)
			}
		}
		taken[strings.ToLower(name)] = true
		out[i] = name
	}
	return out
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
		EscapeCell(string(r.Outcome)),
		EscapeCell(string(r.Code)),
		EscapeCell(r.Message),
		actionID,
		w.amount(r.OldAmount),
		w.amount(r.NewAmount),
		w.amount(r.OldPayout),
		w.amount(r.NewPayout),
	)
	w.row = row
	if err := w.cw.Write(row); err != nil {
		return fmt.Errorf("processors: write result row %d: %w", r.Line, err)
	}
	return nil
}

// Flush writes what is buffered (and ends the encoding) and reports any error
// of an earlier Write. Nothing may be written after it.
func (w *ResultWriter) Flush() error {
	w.cw.Flush()
	err := w.cw.Error()
	if w.enc != nil {
		err = errors.Join(err, w.enc.Close())
	}
	if err != nil {
		return fmt.Errorf("processors: write result file: %w", err)
	}
	return nil
}

// amount writes an amount as the brand reads them: 12.50, or 12,50.
func (w *ResultWriter) amount(a *money.Amount) string {
	if a == nil {
		return ""
	}
	s := a.String()
	if w.format.DecimalComma {
		s = strings.Replace(s, ".", ",", 1)
	}
	return EscapeCell(s)
}

// Receipt is what a brand is told of a file that could not be processed.
type Receipt struct {
	File       string
	FileID     int64
	ReceivedAt string // RFC 3339
	Status     outcome.FileStatus
	Code       outcome.QuarantineCode
	Reason     string
}

// ReceiptColumns are the receipt file's columns.
var ReceiptColumns = []string{"File", "FileId", "ReceivedAt", "Status", "ErrorCode", "Reason"}

// WriteReceipt writes a receipt file (SPEC §4): a header and one row, in rf.
func WriteReceipt(w io.Writer, rf ResultFormat, r Receipt) error {
	rw, err := newCSVOut(w, rf)
	if err != nil {
		return err
	}
	// Every text cell is escaped, ours too: what it holds stays safe whoever
	// fills it in later.
	rows := [][]string{ReceiptColumns, {EscapeCell(r.File), strconv.FormatInt(r.FileID, 10), EscapeCell(r.ReceivedAt),
		EscapeCell(string(r.Status)), EscapeCell(string(r.Code)), EscapeCell(r.Reason)}}
	for _, row := range rows {
		if err := rw.cw.Write(row); err != nil {
			return fmt.Errorf("processors: write receipt: %w", err)
		}
	}
	return rw.Flush()
}

// EscapeCell defuses a cell that a spreadsheet would run as a formula (CSV
// injection): see csvsafe.Cell, which every CSV writer of returnsd shares.
func EscapeCell(s string) string { return csvsafe.Cell(s) }
