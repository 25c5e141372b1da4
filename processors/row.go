package processors

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// row reads the cells of one record, trimmed; a missing trailing cell is blank.
//
// cell returns the i-th cell; i is -1 for a column the header lacks.
type row struct {
	fields  []string
	unknown []int     // Record.Unknown
	header  []string  // names a column whose value is unknown
	err     *RowError // the first problem found; later ones are ignored
}

// newRow starts reading a record; a record with a problem is rejected by it
// before any cell is looked at. header names the columns for messages.
func newRow(rec Record, header []string) row {
	return row{fields: rec.Fields, unknown: rec.Unknown, header: header, err: rec.Problem}
}

// A value quoted after a space (`1, "OTHER"`) is not a quoted field to RFC 4180,
// but it is what the brand meant, so its quotes are dropped here.
//
// A cell whose value the file does not hold (Record.Unknown) rejects the row
// UNKNOWN_VALUE as it is read, so that every reader refuses it before it can
// pass for a blank (a formula's missing result would make an Amount "absent",
// and the row a reversal). A column no reader reads is never asked for and
// stays harmless. What the cell holds instead ("=100*0.6") is returned, never "".
func (r *row) cell(i int) string {
	if i < 0 || i >= len(r.fields) {
		return ""
	}
	if r.unknown != nil && slices.Contains(r.unknown, i) {
		r.rejectUnknown(i)
	}
	s := strings.TrimSpace(r.fields[i])
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(strings.ReplaceAll(s[1:len(s)-1], `""`, `"`))
	}
	return s
}

// reject records a problem unless an earlier one already rejects the row: each
// rejected row carries one code, the first in the reader's order of checks.
func (r *row) reject(code outcome.Code, format string, args ...any) {
	if r.err == nil {
		r.err = &RowError{Code: code, Message: fmt.Sprintf(format, args...)}
	}
}

// rejectUnknown rejects the row for cell i, whose value the file does not hold:
// a formula without its result, or a spreadsheet error value.
func (r *row) rejectUnknown(i int) {
	title := fmt.Sprintf("Column %d", i+1)
	if i < len(r.header) && r.header[i] != "" {
		title = r.header[i]
	}
	v := strings.TrimSpace(r.fields[i])
	switch {
	case v == "=":
		r.reject(outcome.UnknownValue, "%s is a formula whose value the file does not hold; "+
			"save the file from a program that calculates formulas, or paste the values", title)
	case strings.HasPrefix(v, "="):
		r.reject(outcome.UnknownValue, "%s is a formula (%s) whose value the file does not hold; "+
			"save the file from a program that calculates formulas, or paste the values", title, shownValue(v))
	default:
		r.reject(outcome.UnknownValue, "%s holds the spreadsheet error %s; correct the cell or type its value", title, shownValue(v))
	}
}

// checkWidth rejects values beyond the header: they belong to no column, so the
// row was most likely split by a delimiter inside an unquoted value.
func (r *row) checkWidth(width int) {
	extra := 0
	for _, f := range r.fields[min(width, len(r.fields)):] {
		if strings.TrimSpace(f) != "" {
			extra++
		}
	}
	if extra > 0 {
		r.reject(outcome.MalformedRow,
			"Row has %d values but the header has %d columns; quote values that contain the delimiter",
			len(r.fields), width)
	}
}

// checkLength rejects text longer than limit characters.
func (r *row) checkLength(title, v string, limit int) {
	if len(v) > limit { // bytes ≥ characters: the count is only needed past the limit
		if n := utf8.RuneCountInString(v); n > limit {
			r.reject(outcome.FieldTooLong, "%s is %d characters long; the limit is %d", title, n, limit)
		}
	}
}

// notAnID is the message for an id cell that is not a whole number above 0. A
// spreadsheet that shows a long number in scientific notation writes it so to
// CSV (9.00000000000012E+14), having perhaps dropped digits: the brand is told
// how to keep them rather than left to guess.
func notAnID(title, raw string) string {
	if scientific.MatchString(raw) {
		return fmt.Sprintf("%s %s was written in scientific notation by a spreadsheet, which may have lost digits; "+
			"format the column as a number without decimals (or as text) and send the ids as exported", title, quoteValue(raw))
	}
	return fmt.Sprintf("%s %s is not a whole number above 0", title, quoteValue(raw))
}

var scientific = regexp.MustCompile(`^[0-9]+([.,][0-9]+)?[eE][+]?[0-9]+$`)

// parseID reads a positive whole number, as ids are.
func parseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// parseAmount reads an amount, returning the message for INVALID_AMOUNT.
func parseAmount(title, s string, decimalComma bool) (money.Amount, string) {
	a, err := money.Parse(s, decimalComma)
	switch {
	case err == nil:
		return a, ""
	case errors.Is(err, money.ErrNegative):
		return 0, fmt.Sprintf("%s %s is negative", title, quoteValue(s))
	case errors.Is(err, money.ErrPrecision):
		return 0, fmt.Sprintf("%s %s has more than 2 decimal places", title, quoteValue(s))
	case errors.Is(err, money.ErrRange):
		return 0, fmt.Sprintf("%s %s is too large", title, quoteValue(s))
	case !decimalComma && strings.Contains(s, ","):
		return 0, fmt.Sprintf("%s %s is not a number; amounts are read with a decimal point (ask for decimal_comma if you write 12,50)", title, quoteValue(s))
	case decimalComma && strings.Contains(s, "."):
		return 0, fmt.Sprintf("%s %s is not a number; amounts are read with a decimal comma (12,50)", title, quoteValue(s))
	}
	return 0, fmt.Sprintf("%s %s is not a number", title, quoteValue(s))
}

// parseCurrency reads an ISO 4217 code: three ASCII letters, any case.
func parseCurrency(s string) (string, bool) {
	if len(s) != 3 {
		return "", false
	}
	var b [3]byte
	for i := 0; i < 3; i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		default:
			return "", false
		}
		b[i] = c
	}
	if s == string(b[:]) {
		return s, true // already upper case: no allocation
	}
	return string(b[:]), true
}

// lookupCode finds a code as written ("Item returned", "item-returned") in a table
// built by codeTable, without allocating for short ASCII codes.
func lookupCode(table map[string]string, s string) (string, bool) {
	if v, ok := table[s]; ok { // exact canonical spelling, the common case
		return v, true
	}
	var buf [64]byte
	key := buf[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			v, ok := table[strings.ToUpper(normalizeName(s))]
			return v, ok
		case c == ' ' || c == '_' || c == '-' || c == '\t':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		key = append(key, c)
	}
	v, ok := table[string(key)]
	return v, ok
}

// codeTable builds a lookup table: every canonical code and alias, and their
// folded forms, to the canonical code.
func codeTable(canonical []string, aliases map[string]string) map[string]string {
	t := make(map[string]string)
	fold := func(s string) string { return strings.ToUpper(normalizeName(s)) }
	for _, c := range canonical {
		t[c] = c
		t[fold(c)] = c
	}
	for a, c := range aliases {
		t[fold(a)] = c
	}
	return t
}

// quoteValue shows a brand's cell inside a message: in double quotes, as written
// (a quote inside stays a plain quote, not \"), with control characters escaped
// so a message stays one line, and cut after 60 characters.
func quoteValue(s string) string {
	return `"` + shownValue(s) + `"`
}

// shownValue is a brand's cell as a message shows it: as written, with control
// characters escaped and cut after 60 characters.
func shownValue(s string) string {
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:60]) + "…"
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// requiredID reads a required whole number above 0 from cell i, rejecting the row
// with ifEmpty when the cell is blank and with ifBad when it is not such a number.
func (r *row) requiredID(i int, title string, ifEmpty, ifBad outcome.Code) int64 {
	raw := r.cell(i)
	if raw == "" {
		r.reject(ifEmpty, "%s is empty", title)
		return 0
	}
	id, ok := parseID(raw)
	if !ok {
		r.reject(ifBad, "%s", notAnID(title, raw))
		return 0
	}
	return id
}
