package processors

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/returnsd/returnsd/outcome"
)

// A .xlsx is a zip of XML parts (SpreadsheetML in an OPC package). It is read
// here with encoding/xml, part by part and as a stream: the package's
// relationships lead to the workbook, the workbook's to its first sheet (in tab
// order), its shared strings and its styles. The shared strings and the styles
// are read whole (the sheet's cells refer to them); the sheet is read row by row.
// Every part is inflated through openEntry, so its checksum is verified and its
// size counted against the expansion limit, and any XML error or truncation in
// a part is an error: a damaged workbook never reads as a shorter one.

// maxWorkbookParts bounds the entries of a workbook. A workbook has a dozen parts
// plus one per sheet, image or comment; thousands mean something else.
const maxWorkbookParts = 10000

// Relationship types, matched by their last segment: Transitional and Strict
// OOXML differ only in the namespace before it.
const (
	relOfficeDocument = "/officeDocument"
	relWorksheet      = "/worksheet"
	relSharedStrings  = "/sharedStrings"
	relStyles         = "/styles"
)

// isWorkbook reports a zip that is an Office package rather than an archive of
// data files. Another Office document (a .docx) is refused by its main part.
func isWorkbook(zr *zip.Reader) bool {
	for _, e := range zr.File {
		if strings.EqualFold(e.Name, "xl/workbook.xml") || e.Name == "_rels/.rels" {
			return true
		}
	}
	return false
}

// workbookPackage is an opened .xlsx: its parts by name, and what reading them
// may cost.
type workbookPackage struct {
	o     *opener
	name  string               // the file's name, for messages
	parts map[string]*zip.File // by lower-case part name: OPC part names ignore case
	// inflated counts the bytes every part read yields together, against the
	// one expansion limit of the file.
	inflated int64
}

func (o *opener) openXLSX(zr *zip.Reader, name string) (recordSource, error) {
	if len(zr.File) > maxWorkbookParts {
		return nil, &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
			"workbook %s has %d parts, over the limit of %d", displayName(name), len(zr.File), maxWorkbookParts)}
	}
	p := &workbookPackage{o: o, name: name, parts: make(map[string]*zip.File, len(zr.File))}
	for _, e := range zr.File {
		p.parts[strings.ToLower(strings.TrimPrefix(e.Name, "/"))] = e
	}
	src, err := p.openFirstSheet()
	var fe *FileError
	if err == nil || o.progress.err.Load() != nil || errors.As(err, &fe) {
		return src, err
	}
	// A part that stopped the XML decoder may well have been stopped by damage
	// to its compressed bytes, which its checksum, at its end, would tell: say so.
	var pe *partError
	if errors.As(err, &pe) {
		if e, ok := p.parts[strings.ToLower(pe.part)]; ok {
			if verr := o.verifyEntry(e, name, maxNesting); verr != nil {
				return nil, verr
			}
		}
	}
	return nil, &FileError{Code: outcome.DamagedFile, Reason: fmt.Sprintf(
		"workbook %s is damaged: %s", displayName(name), describeDamage(err))}
}

func (p *workbookPackage) openFirstSheet() (recordSource, error) {
	book, err := p.mainPart()
	if err != nil {
		return nil, err
	}
	rels, err := p.relationships(book)
	if err != nil {
		return nil, err
	}
	wb, err := p.readWorkbook(book)
	if err != nil {
		return nil, err
	}
	if len(wb.sheets) == 0 {
		return nil, &FileError{Code: outcome.EmptyFile, Reason: fmt.Sprintf("workbook %s has no sheets", displayName(p.name))}
	}
	first := wb.sheets[0]
	rel, ok := rels.byID[first.relID]
	if !ok {
		return nil, fmt.Errorf("sheet %q has no relationship %q in %s", first.name, first.relID, relsPart(book))
	}
	if !strings.HasSuffix(rel.typ, relWorksheet) {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"the first sheet %q of workbook %s is not a table of cells (a chart or a macro sheet); put the data on the first sheet",
			first.name, displayName(p.name))}
	}
	sheetPart := rel.target

	src := &xlsxSource{
		pkg: p, part: sheetPart, sheet: first.name, date1904: wb.date1904,
		maxField: p.o.limits.MaxFieldBytes,
	}
	p.o.dialect = Dialect{Workbook: true}
	if part, ok := p.related(rels, relSharedStrings, "xl/sharedStrings.xml"); ok {
		if src.strings, err = p.readSharedStrings(part); err != nil {
			return nil, err
		}
	}
	if part, ok := p.related(rels, relStyles, "xl/styles.xml"); ok {
		if src.dateStyles, err = p.readDateStyles(part); err != nil {
			return nil, err
		}
	}
	// The sheet alone is read as a stream, row by row: it is checked whole first
	// (see verify), so that damage in it is found before its first row is used.
	// The parts above are read whole before any row, and checked as they are.
	r, err := p.open(sheetPart)
	if err != nil {
		return nil, err
	}
	if err := p.o.verifyEntry(p.parts[strings.ToLower(sheetPart)], p.name, maxNesting); err != nil {
		return nil, err
	}
	src.x = newXMLReader(r)
	return src, nil
}

// open returns the content of a part, inflated through the checked path.
func (p *workbookPackage) open(part string) (io.Reader, error) {
	e, ok := p.parts[strings.ToLower(part)]
	if !ok {
		return nil, fmt.Errorf("part %s is missing", part)
	}
	if e.Flags&0x1 != 0 {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"workbook %s is encrypted; save it as .xlsx without a password", displayName(p.name))}
	}
	if e.Method != zip.Store && e.Method != zip.Deflate {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"part %s of workbook %s uses compression method %d; save the workbook again as .xlsx", part, displayName(p.name), e.Method)}
	}
	return p.o.openEntry(e, &p.inflated), nil
}

// mainPart finds the workbook through the package's relationships; a package
// without them is found where Excel puts the workbook.
func (p *workbookPackage) mainPart() (string, error) {
	if _, ok := p.parts["_rels/.rels"]; !ok {
		return "xl/workbook.xml", nil
	}
	rels, err := p.relationships("")
	if err != nil {
		return "", err
	}
	part, ok := p.related(rels, relOfficeDocument, "xl/workbook.xml")
	if !ok {
		return "", fmt.Errorf("_rels/.rels names no main document")
	}
	return part, nil
}

type relationship struct{ typ, target string }

type relationships struct {
	byID   map[string]relationship
	byType []relationship // in document order
}

// related returns the part a relationship of a type leads to (the first, in
// document order), or fallback when there is none but the package has a part of
// that name, as some generators leave out the relationship.
func (p *workbookPackage) related(rels relationships, typeSuffix, fallback string) (string, bool) {
	for _, rel := range rels.byType {
		if strings.HasSuffix(rel.typ, typeSuffix) {
			return rel.target, true
		}
	}
	if _, ok := p.parts[strings.ToLower(fallback)]; ok && fallback != "" {
		return fallback, true
	}
	return "", false
}

// relsPart is the relationships part of a part: xl/_rels/workbook.xml.rels.
func relsPart(part string) string {
	if part == "" {
		return "_rels/.rels"
	}
	return path.Join(path.Dir(part), "_rels", path.Base(part)+".rels")
}

// relationships reads the relationships of a part ("" for the package's own).
// A part without a relationships part has none.
func (p *workbookPackage) relationships(source string) (relationships, error) {
	rels := relationships{byID: map[string]relationship{}}
	name := relsPart(source)
	if _, ok := p.parts[strings.ToLower(name)]; !ok {
		return rels, nil
	}
	r, err := p.open(name)
	if err != nil {
		return rels, err
	}
	x := newXMLReader(r)
	for {
		tok, err := x.next()
		if err == io.EOF {
			return rels, nil
		}
		if err != nil {
			return rels, &partError{name, err}
		}
		e, ok := tok.(xml.StartElement)
		if !ok || e.Name.Local != "Relationship" || x.depth() != 2 {
			continue
		}
		if mode, _ := attr(e, "TargetMode"); strings.EqualFold(mode, "External") {
			continue
		}
		id, _ := attr(e, "Id")
		typ, _ := attr(e, "Type")
		target, _ := attr(e, "Target")
		rel := relationship{typ: typ, target: p.resolve(source, target)}
		if _, dup := rels.byID[id]; !dup {
			rels.byID[id] = rel
		}
		rels.byType = append(rels.byType, rel)
	}
}

// resolve turns a relationship's target into a part name: relative to the source
// part's folder, or to the package root when it starts with a slash. A target
// some generators write relative to the root instead is found too.
func (p *workbookPackage) resolve(source, target string) string {
	if strings.Contains(target, "%") {
		if t, err := url.PathUnescape(target); err == nil {
			target = t
		}
	}
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(path.Clean(target), "/")
	}
	part := strings.TrimPrefix(path.Join(path.Dir(source), target), "/")
	if _, ok := p.parts[strings.ToLower(part)]; !ok {
		if _, ok := p.parts[strings.ToLower(path.Clean(target))]; ok {
			return path.Clean(target)
		}
	}
	return part
}

type workbookSheet struct{ name, relID string }

type workbookSheets struct {
	sheets   []workbookSheet // in tab order
	date1904 bool
}

func (p *workbookPackage) readWorkbook(part string) (workbookSheets, error) {
	var wb workbookSheets
	r, err := p.open(part)
	if err != nil {
		return wb, err
	}
	x := newXMLReader(r)
	for {
		tok, err := x.next()
		if err == io.EOF {
			return wb, nil
		}
		if err != nil {
			return wb, &partError{part, err}
		}
		e, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case x.depth() == 1 && e.Name.Local != "workbook":
			return wb, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
				"%s is an Office document but not a workbook; send .xlsx or CSV", displayName(p.name))}
		case x.depth() == 2 && e.Name.Local == "workbookPr":
			v, _ := attr(e, "date1904")
			wb.date1904 = v == "1" || strings.EqualFold(v, "true")
		case x.depth() == 3 && e.Name.Local == "sheet" && x.open[1].Local == "sheets":
			s := workbookSheet{}
			s.name, _ = attr(e, "name")
			for _, a := range e.Attr {
				if a.Name.Local == "id" && a.Name.Space != "" { // r:id, whatever the prefix
					s.relID = a.Value
				}
			}
			wb.sheets = append(wb.sheets, s)
		}
	}
}

// sharedStrings holds a workbook's shared strings compactly: their text end to
// end in one byte slice, and where each ends. A million short strings cost their
// bytes and four bytes each, not a string header and an allocation each.
type sharedStrings struct {
	text []byte
	ends []uint32
}

func (s *sharedStrings) get(i int) (string, bool) {
	if s == nil || i < 0 || i >= len(s.ends) {
		return "", false
	}
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return string(s.text[start:s.ends[i]]), true
}

// readSharedStrings reads the shared string table: each <si> is the text of its
// <t>, or of its rich-text runs' <t>, without the phonetic guides (<rPh>) of
// East Asian text.
func (p *workbookPackage) readSharedStrings(part string) (*sharedStrings, error) {
	r, err := p.open(part)
	if err != nil {
		return nil, err
	}
	s := &sharedStrings{}
	x := newXMLReader(r)
	var buf []byte
	for {
		tok, err := x.next()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return nil, &partError{part, err}
		}
		if e, ok := tok.(xml.StartElement); ok && x.depth() == 2 && e.Name.Local == "si" {
			// No limit but the part's size: a string too long for a cell is
			// refused when a cell uses it.
			if buf, _, err = readRichText(x, buf[:0], math.MaxInt); err != nil {
				return nil, &partError{part, err}
			}
			s.text = append(s.text, buf...)
			if uint64(len(s.text)) > 1<<32-1 {
				return nil, fmt.Errorf("%s: the shared strings exceed 4 GiB", part)
			}
			s.ends = append(s.ends, uint32(len(s.text)))
		}
	}
}

// readRichText reads the text of a string item (<si>, or a cell's <is>) whose
// start was returned last, appending it to buf: the <t> directly inside, and
// the <t> of each run (<r>), with _xHHHH_ escapes decoded. Text beyond limit
// bytes is dropped and reported by tooLong.
func readRichText(x *xmlReader, buf []byte, limit int) (text []byte, tooLong bool, err error) {
	d := x.depth()
	end := len(buf) + min(limit, math.MaxInt-len(buf))
	for {
		tok, err := x.next()
		if err != nil {
			return buf, tooLong, err
		}
		switch e := tok.(type) {
		case xml.EndElement:
			if x.depth() < d {
				return buf, tooLong, nil
			}
		case xml.StartElement:
			inRun := x.depth() == d+2 && x.open[d].Local == "r"
			switch {
			case e.Name.Local == "t" && (x.depth() == d+1 || inRun):
				from := len(buf)
				var cut bool
				buf, cut, err = x.text(buf, end)
				if err != nil {
					return buf, tooLong, err
				}
				tooLong = tooLong || cut
				if bytes.Contains(buf[from:], []byte("_x")) {
					buf = append(buf[:from], decodeEscapes(string(buf[from:]))...)
				}
			case x.depth() == d+1 && e.Name.Local == "r":
				// a run: its <t> is read above, its formatting skipped below
			default: // phonetic guides (<rPh>), formatting (<rPr>), extensions
				if err := x.skip(); err != nil {
					return buf, tooLong, err
				}
			}
		}
	}
}

// readDateStyles reads which cell styles (the cellXfs a cell's s attribute
// indexes) format numbers as dates, by their number format: a built-in date
// format, or a custom one whose code shows a date or time.
func (p *workbookPackage) readDateStyles(part string) ([]bool, error) {
	r, err := p.open(part)
	if err != nil {
		return nil, err
	}
	codes := map[int]string{}
	var formats []int
	x := newXMLReader(r)
	for {
		tok, err := x.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &partError{part, err}
		}
		e, ok := tok.(xml.StartElement)
		if !ok || x.depth() != 3 {
			continue
		}
		switch parent := x.open[1].Local; {
		case parent == "numFmts" && e.Name.Local == "numFmt":
			id, _ := attr(e, "numFmtId")
			code, _ := attr(e, "formatCode")
			if n, err := strconv.Atoi(id); err == nil {
				codes[n] = code
			}
		case parent == "cellXfs" && e.Name.Local == "xf":
			id, _ := attr(e, "numFmtId")
			n, err := strconv.Atoi(id)
			if err != nil {
				n = 0 // General
			}
			formats = append(formats, n)
		}
	}
	dates := make([]bool, len(formats))
	for i, id := range formats {
		if code, ok := codes[id]; ok {
			dates[i] = isDateFormatCode(code)
		} else {
			dates[i] = builtinDateFormat(id)
		}
	}
	return dates, nil
}

// partError is what went wrong reading one part of a workbook.
type partError struct {
	part string
	err  error
}

func (e *partError) Error() string { return e.part + ": " + e.err.Error() }
func (e *partError) Unwrap() error { return e.err }

// describeDamage says in words what is wrong with a workbook, and in which part.
func describeDamage(err error) string {
	var pe *partError
	if errors.As(err, &pe) {
		return pe.part + ": " + damageText(pe.err)
	}
	return damageText(err)
}
