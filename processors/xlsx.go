package processors

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/returnsd/returnsd/outcome"
)

// maxWorkbookParts bounds the entries of a workbook. A workbook has a dozen parts
// plus one per sheet, image or comment; thousands mean something else.
const maxWorkbookParts = 10000

// xlsxXMLInMemory is the size over which excelize keeps a sheet or the shared
// strings in a temporary file instead of memory.
const xlsxXMLInMemory = 16 << 20

func isWorkbook(zr *zip.Reader) bool {
	for _, e := range zr.File {
		if strings.EqualFold(e.Name, "xl/workbook.xml") {
			return true
		}
	}
	return false
}

// xlsxSource reads the first sheet of a workbook, row by row, with cell values as
// Excel shows them: formatted numbers without float artifacts ("12.5", not
// "12.499999999999998"), dates as yyyy-mm-dd, and an empty row for each row the
// sheet skips, so line numbers match what the brand sees.
//
// excelize reads the whole .xlsx into memory (its compressed size is within
// MaxFileBytes) and spills large XML parts to temporary files; every part's
// declared size is checked against the expansion limit first, and archive/zip
// refuses a part that inflates beyond its declared size.
type xlsxSource struct {
	file     *excelize.File
	rows     *excelize.Rows
	line     int
	maxField int
}

func (o *opener) openXLSX(r io.ReaderAt, size int64, zr *zip.Reader, name string) (src recordSource, err error) {
	if len(zr.File) > maxWorkbookParts {
		return nil, &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
			"workbook %s has %d parts, over the limit of %d", displayName(name), len(zr.File), maxWorkbookParts)}
	}
	limit := o.expansionLimit()
	var total uint64
	for _, e := range zr.File {
		if err := o.checkDeclared(e, name); err != nil {
			return nil, err
		}
		total += e.UncompressedSize64
		if total > uint64(limit) {
			return nil, o.tooLarge(name, true, total)
		}
	}
	// excelize is a large parser of untrusted XML; a panic in it must quarantine
	// the file, not stop the daemon.
	defer func() {
		if p := recover(); p != nil {
			src, err = nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
				"workbook %s could not be read (%v)", displayName(name), p)}
		}
	}()
	file, err := excelize.OpenReader(io.NewSectionReader(r, 0, size), excelize.Options{
		UnzipSizeLimit:    limit,
		UnzipXMLSizeLimit: min(xlsxXMLInMemory, limit),
		ShortDatePattern:  "yyyy-mm-dd",
		LongDatePattern:   "yyyy-mm-dd",
		LongTimePattern:   "hh:mm:ss",
	})
	if err != nil {
		if file != nil {
			_ = file.Close()
		}
		if o.progress.err.Load() != nil {
			return nil, err
		}
		if errors.Is(err, excelize.ErrWorkbookPassword) || errors.Is(err, excelize.ErrWorkbookFileFormat) {
			return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
				"workbook %s is password-protected or not an .xlsx; save it as .xlsx without a password", displayName(name))}
		}
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"workbook %s could not be read (%v)", displayName(name), err)}
	}
	o.closers = append(o.closers, file.Close)
	sheets := file.GetSheetList()
	if len(sheets) == 0 {
		return nil, &FileError{Code: outcome.EmptyFile, Reason: fmt.Sprintf("workbook %s has no sheets", displayName(name))}
	}
	rows, err := file.Rows(sheets[0])
	if err != nil {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"sheet %q of workbook %s could not be read (%v)", sheets[0], displayName(name), err)}
	}
	o.closers = append(o.closers, rows.Close)
	return &xlsxSource{file: file, rows: rows, maxField: o.limits.MaxFieldBytes}, nil
}

func (x *xlsxSource) next() (rec Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			rec, err = Record{}, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
				"row %d of the workbook could not be read (%v)", x.line, p)}
		}
	}()
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return Record{}, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
				"the workbook is damaged after row %d (%v)", x.line, err)}
		}
		return Record{}, io.EOF
	}
	x.line++
	cells, err := x.rows.Columns()
	if err != nil {
		return Record{}, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"row %d of the workbook could not be read (%v)", x.line, err)}
	}
	for _, c := range cells {
		if len(c) > x.maxField {
			return Record{}, &FileError{Code: outcome.FieldTooLarge, Reason: fmt.Sprintf(
				"row %d has a cell of more than %d bytes", x.line, x.maxField)}
		}
	}
	if len(cells) > maxColumns {
		return Record{}, &FileError{Code: outcome.FieldTooLarge, Reason: fmt.Sprintf(
			"row %d has more than %d columns", x.line, maxColumns)}
	}
	return Record{Line: x.line, Fields: cells}, nil
}
