package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/returnsd/returnsd/internal/csvsafe"
	"github.com/returnsd/returnsd/money"
)

// Format is how a report or an export is written.
type Format string

const (
	FormatCSV  Format = "csv"
	FormatJSON Format = "json"
	FormatHTML Format = "html" // the report only
)

// ParseFormat reads a --format value; html only when allowHTML.
func ParseFormat(s string, allowHTML bool) (Format, error) {
	switch f := Format(s); f {
	case FormatCSV, FormatJSON:
		return f, nil
	case FormatHTML:
		if allowHTML {
			return f, nil
		}
		return "", fmt.Errorf("--format is csv or json, not %q", s)
	}
	if allowHTML {
		return "", fmt.Errorf("--format is html, csv or json, not %q", s)
	}
	return "", fmt.Errorf("--format is csv or json, not %q", s)
}

// table writes rows by the one convention of every export and of the
// report's CSV (docs/report.md):
//
//   - CSV: UTF-8 without a byte order mark, comma-separated, LF line ends, a
//     header row of the column names, quoted as RFC 4180 says. Every text cell
//     is made formula-safe (csvsafe.Cell). Ids and counts are plain integers;
//     amounts have two decimals and a point, and a negative one its leading
//     minus: numbers, never formulas (csvsafe.Amount). Times are RFC 3339 in
//     the brand's zone (an export) or the report's. A value that is absent is
//     an empty cell.
//   - JSON: an array with one object per line, its keys the CSV's column
//     names in the same order. Ids and counts are numbers; amounts are strings
//     ("12.50", "-80.04"), so no reader turns them into floats; times are RFC
//     3339 strings; text is a string, "" when empty. A value that is absent
//     (a date an open-ended contract has not set, an inquiry's missing
//     amount) is null.
type table struct {
	bw   *bufio.Writer
	csv  *csv.Writer // nil for JSON
	cols []string
	loc  *time.Location
	rows int
	rec  []string
	err  error
}

func newTable(w io.Writer, f Format, loc *time.Location, cols []string) *table {
	t := &table{bw: bufio.NewWriterSize(w, 64<<10), cols: cols, loc: loc, rec: make([]string, len(cols))}
	if f == FormatCSV {
		t.csv = csv.NewWriter(t.bw)
		for i, c := range cols {
			t.rec[i] = csvsafe.Cell(c)
		}
		t.err = t.csv.Write(t.rec)
		return t
	}
	_, t.err = t.bw.WriteString("[")
	return t
}

// write writes one row, a value per column: a string for text; an int, an
// int64 or a money.Amount for a number; a time.Time for a time; nil (or a nil
// pointer, or the zero time) for a value that is absent. The first error is
// kept for close.
func (t *table) write(vals ...any) {
	if t.err != nil {
		return
	}
	if len(vals) != len(t.cols) {
		t.err = fmt.Errorf("report: %d values for %d columns", len(vals), len(t.cols))
		return
	}
	t.rows++
	if t.csv != nil {
		for i, v := range vals {
			t.rec[i] = t.csvCell(v)
		}
		t.err = t.csv.Write(t.rec)
		return
	}
	if t.rows > 1 {
		t.bw.WriteString(",")
	}
	t.bw.WriteString("\n{")
	for i, v := range vals {
		if i > 0 {
			t.bw.WriteString(",")
		}
		key, _ := json.Marshal(t.cols[i])
		t.bw.Write(key)
		t.bw.WriteString(":")
		val, err := json.Marshal(t.jsonValue(v))
		if err != nil {
			t.err = err
			return
		}
		t.bw.Write(val)
	}
	_, t.err = t.bw.WriteString("}")
}

// value unwraps a pointer and the zero time to nil.
func value(v any) any {
	switch x := v.(type) {
	case *money.Amount:
		if x == nil {
			return nil
		}
		return *x
	case *time.Time:
		if x == nil {
			return nil
		}
		return value(*x)
	case time.Time:
		if x.IsZero() {
			return nil
		}
	}
	return v
}

func (t *table) csvCell(v any) string {
	switch x := value(v).(type) {
	case nil:
		return ""
	case string:
		return csvsafe.Cell(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case money.Amount:
		return csvsafe.Amount(x)
	case time.Time:
		return x.In(t.loc).Format(time.RFC3339)
	default:
		panic(fmt.Sprintf("report: a table cannot write a %T", v))
	}
}

func (t *table) jsonValue(v any) any {
	switch x := value(v).(type) {
	case money.Amount:
		return x.String()
	case time.Time:
		return x.In(t.loc).Format(time.RFC3339)
	case nil, string, int, int64:
		return x
	default:
		panic(fmt.Sprintf("report: a table cannot write a %T", v))
	}
}

// close ends the table; err is the producer's own error, returned first.
func (t *table) close(err error) error {
	if t.csv != nil {
		t.csv.Flush()
		if t.err == nil {
			t.err = t.csv.Error()
		}
	} else if t.err == nil {
		_, t.err = t.bw.WriteString("\n]\n")
	}
	if err != nil {
		return err
	}
	if t.err != nil {
		return fmt.Errorf("report: write: %w", t.err)
	}
	if err := t.bw.Flush(); err != nil {
		return fmt.Errorf("report: write: %w", err)
	}
	return nil
}
