package processors

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/returnsd/returnsd/outcome"
)

// maxSheetRows is Excel's row limit.
const maxSheetRows = 1 << 20

// xlsxSource streams the rows of one worksheet. Line numbers are the sheet's own
// row numbers (the r attribute), so rows the sheet skips keep the numbers the
// brand sees, and so do cells the sheet skips keep their columns. The document
// is read to its end, so damage after the last row is found too; any error in
// it ends the file as DAMAGED_FILE, naming the row.
type xlsxSource struct {
	pkg        *workbookPackage
	x          *xmlReader
	part       string // the sheet's part name
	sheet      string // the sheet's tab name
	strings    *sharedStrings
	dateStyles []bool // by cell style index
	date1904   bool
	maxField   int

	line    int // the row returned last
	reading int // the row being read, for messages; 0 between rows
	fields  []string
	unknown []int
	buf     []byte
}

func (s *xlsxSource) next() (Record, error) {
	line, fields, err := s.nextRow()
	if err != nil {
		if err != io.EOF {
			err = s.damaged(err)
		}
		return Record{}, err
	}
	rec := Record{Line: line, Fields: fields}
	if len(s.unknown) > 0 { // nil for nearly every row (see Record.Unknown)
		rec.Unknown = s.unknown
	}
	return rec, nil
}

func (s *xlsxSource) nextRow() (int, []string, error) {
	for {
		tok, err := s.x.next()
		if err != nil {
			return 0, nil, err // io.EOF after the whole document
		}
		e, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch depth := s.x.depth(); {
		case depth == 1 && e.Name.Local != "worksheet":
			return 0, nil, fmt.Errorf("the sheet's root element is <%s>, not <worksheet>", e.Name.Local)
		case depth == 3 && s.x.open[1].Local == "sheetData":
			if e.Name.Local != "row" {
				return 0, nil, s.x.syntaxError(fmt.Sprintf("unexpected element <%s> among the rows", e.Name.Local))
			}
			return s.readRow(e)
		case depth == 2 && e.Name.Local != "sheetData":
			if err := s.x.skip(); err != nil { // column widths, views, page setup
				return 0, nil, err
			}
		}
	}
}

func (s *xlsxSource) readRow(e xml.StartElement) (int, []string, error) {
	n := s.line + 1
	if r, ok := attr(e, "r"); ok {
		v, err := strconv.Atoi(strings.TrimSpace(r))
		switch {
		case err != nil || v < 1 || v > maxSheetRows:
			return 0, nil, fmt.Errorf("row number %s is not one", printable(r))
		case v <= s.line:
			return 0, nil, fmt.Errorf("row %d comes after row %d", v, s.line)
		}
		n = v
	}
	s.reading = n
	s.fields, s.unknown = s.fields[:0], s.unknown[:0]
	col := -1
	for {
		tok, err := s.x.next()
		if err != nil {
			return 0, nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement: // the row's: elements nest
			for len(s.fields) > 0 && s.fields[len(s.fields)-1] == "" && !s.isUnknown(len(s.fields)-1) {
				s.fields = s.fields[:len(s.fields)-1] // styled empty cells after the last value
			}
			s.line, s.reading = n, 0
			return n, s.fields, nil
		case xml.StartElement:
			switch t.Name.Local {
			case "c":
				if col, err = s.readCell(t, col); err != nil {
					return 0, nil, err
				}
			case "extLst":
				if err := s.x.skip(); err != nil {
					return 0, nil, err
				}
			default:
				return 0, nil, s.x.syntaxError(fmt.Sprintf("unexpected element <%s> in a row", t.Name.Local))
			}
		}
	}
}

func (s *xlsxSource) isUnknown(col int) bool {
	return len(s.unknown) > 0 && s.unknown[len(s.unknown)-1] == col
}

// cell is what one <c> holds, as written.
type cell struct {
	typ, style string
	value      []byte // <v>, or the text of <is>
	hasValue   bool
	formula    []byte
	hasFormula bool
	cut        bool // the value is longer than a field may be
}

// readCell reads the cell whose start is e and places its value in the row's
// fields; prev is the column of the cell before it in the row.
func (s *xlsxSource) readCell(e xml.StartElement, prev int) (int, error) {
	col := prev + 1
	if ref, ok := attr(e, "r"); ok {
		c, ok := columnOf(ref)
		if !ok {
			return 0, fmt.Errorf("cell reference %s is not one", printable(ref))
		}
		col = c
	}
	if col <= prev {
		return 0, fmt.Errorf("cell %s comes after %s in the row", cellName(col, s.reading), cellName(prev, s.reading))
	}
	if col >= maxColumns {
		return 0, &FileError{Code: outcome.FieldTooLarge, Reason: fmt.Sprintf(
			"row %d has more than %d columns", s.reading, maxColumns)}
	}
	c := cell{}
	c.typ, _ = attr(e, "t")
	c.style, _ = attr(e, "s")
	s.buf = s.buf[:0]
	for {
		tok, err := s.x.next()
		if err != nil {
			return 0, err
		}
		if _, end := tok.(xml.EndElement); end { // the cell's
			break
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		var cut bool
		switch t.Name.Local {
		case "v":
			start := len(s.buf)
			s.buf, cut, err = s.x.text(s.buf, start+s.maxField)
			c.value, c.hasValue = s.buf[start:], true
		case "is":
			start := len(s.buf)
			s.buf, cut, err = readRichText(s.x, s.buf, s.maxField)
			c.value, c.hasValue = s.buf[start:], true
		case "f": // cut at the limit too: shown only when the value is unknown, and then too long
			start := len(s.buf)
			s.buf, _, err = s.x.text(s.buf, start+s.maxField)
			c.formula, c.hasFormula = s.buf[start:], true
		case "extLst":
			err = s.x.skip()
		default:
			err = s.x.syntaxError(fmt.Sprintf("unexpected element <%s> in cell %s", t.Name.Local, cellName(col, s.reading)))
		}
		if err != nil {
			return 0, err
		}
		c.cut = c.cut || cut
	}
	value, unknown, err := s.value(c, col)
	if err != nil {
		return 0, err
	}
	if c.cut || len(value) > s.maxField {
		return 0, &FileError{Code: outcome.FieldTooLarge, Reason: fmt.Sprintf(
			"row %d has a cell (%s) of more than %d bytes", s.reading, cellName(col, s.reading), s.maxField)}
	}
	for len(s.fields) < col {
		s.fields = append(s.fields, "")
	}
	s.fields = append(s.fields, value)
	if unknown {
		s.unknown = append(s.unknown, col)
	}
	return col, nil
}

// value is the text of a cell as the brand's spreadsheet holds it (see
// xlsxvalue.go). unknown reports a cell whose value the workbook does not hold:
// a formula saved without its result, shown as "=formula", or an error value
// such as #DIV/0!, shown as such.
func (s *xlsxSource) value(c cell, col int) (text string, unknown bool, err error) {
	v := strings.TrimSpace(string(c.value))
	noValue := !c.hasValue || (v == "" && c.typ != "str" && c.typ != "inlineStr")
	if noValue && c.hasFormula && c.typ != "inlineStr" {
		return "=" + strings.TrimPrefix(strings.TrimSpace(string(c.formula)), "="), true, nil
	}
	switch c.typ {
	case "", "n":
		if v == "" {
			return "", false, nil
		}
		if text, ok := numberText(v, s.isDate(c.style), s.date1904); ok {
			return text, false, nil
		}
		return string(c.value), false, nil // not a number: kept as written, for the readers to judge
	case "s":
		if v == "" {
			return "", false, nil
		}
		i, err := strconv.Atoi(v)
		text, ok := s.strings.get(i)
		if err != nil || !ok {
			return "", false, fmt.Errorf("cell %s refers to shared string %s, which the workbook does not have",
				cellName(col, s.reading), printable(v))
		}
		return text, false, nil
	case "inlineStr":
		return string(c.value), false, nil // escapes decoded by readRichText
	case "str":
		return decodeEscapes(string(c.value)), false, nil
	case "b":
		switch v {
		case "1":
			return "TRUE", false, nil
		case "0":
			return "FALSE", false, nil
		}
		return v, false, nil
	case "e":
		if v == "" {
			v = "#N/A"
		}
		return v, true, nil
	case "d":
		return v, false, nil
	}
	return "", false, fmt.Errorf("cell %s has the unknown type %s", cellName(col, s.reading), printable(c.typ))
}

func (s *xlsxSource) isDate(style string) bool {
	if style == "" {
		return false
	}
	i, err := strconv.Atoi(style)
	return err == nil && i >= 0 && i < len(s.dateStyles) && s.dateStyles[i]
}

// damaged turns what stopped the sheet into the reason a brand reads: which sheet,
// where, and what is wrong. An error reading the received bytes themselves is
// passed on to be retried.
func (s *xlsxSource) damaged(err error) error {
	var fe *FileError
	if errors.As(err, &fe) || s.pkg.o.progress.err.Load() != nil {
		return err
	}
	where := "before its first row"
	switch {
	case s.reading > 0:
		where = fmt.Sprintf("at row %d", s.reading)
	case s.line > 0:
		where = fmt.Sprintf("after row %d", s.line)
	}
	return &FileError{Code: outcome.DamagedFile, Reason: fmt.Sprintf("sheet %s (%s) of %s is damaged %s: %s",
		strconv.Quote(s.sheet), s.part, displayName(s.pkg.name), where, describeDamage(err))}
}

// columnOf reads the column of a cell reference ("B7" is 1); the row part is the
// row element's business.
func columnOf(ref string) (int, bool) {
	col, i := 0, 0
	for ; i < len(ref) && i < 4; i++ {
		c := ref[i] | 0x20 // lower case
		if c < 'a' || c > 'z' {
			break
		}
		col = col*26 + int(c-'a'+1)
	}
	if i == 0 || i == len(ref) {
		return 0, false
	}
	for _, c := range ref[i:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	return col - 1, true
}

// cellName names a cell as a spreadsheet does: column 1 of row 7 is B7.
func cellName(col, row int) string {
	if col < 0 {
		return fmt.Sprintf("the start of row %d", row)
	}
	var letters []byte
	for n := col + 1; n > 0; n = (n - 1) / 26 {
		letters = append([]byte{byte('A' + (n-1)%26)}, letters...)
	}
	return fmt.Sprintf("%s%d", letters, row)
}
