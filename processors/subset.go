package processors

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"

	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// SubsetWriter writes some records of a file as a text file that reads back
// (under the same Format) as those records at the same lines: the header on
// line 1 and each record on the line it had, with blank lines between (a
// blank line is a row, and has no outcome). A retry of a file's rejected rows
// is such a file, so the lines of its outcomes and of its result file name
// the rows of the original.
//
// Cells are written as they were read, without EscapeCell: the file is read
// again by returnsd, not opened by a person (its result is escaped as any).
type SubsetWriter struct {
	cw   *csv.Writer
	enc  io.WriteCloser // the encoder, for a legacy encoding
	line int            // the last line written
}

// SubsetFormat is how a subset of a file read in d under the brand's format
// f is written: in the delimiter it was read with (f's, else its own, else a
// comma for a workbook), and in its own legacy encoding, or UTF-8 with a
// byte-order mark when it came with one, as UTF-16 or as a workbook (a BOM is
// read before any configured encoding), else plain UTF-8. Its result then
// comes in the format the original's did.
func (d Dialect) SubsetFormat(f Format) ResultFormat {
	rf := ResultFormat{Comma: d.Comma, Encoding: d.Encoding, BOM: d.BOM || d.UTF16 || d.Workbook}
	if c, err := f.delimiter(); err == nil && c != 0 {
		rf.Comma = c
	}
	if rf.Comma == 0 {
		rf.Comma = ','
	}
	if rf.BOM {
		rf.Encoding = ""
	}
	return rf
}

// NewSubsetWriter writes the header as line 1 in rf (Dialect.SubsetFormat).
func NewSubsetWriter(w io.Writer, header []string, rf ResultFormat) (*SubsetWriter, error) {
	sw := &SubsetWriter{}
	switch {
	case rf.Encoding != "":
		e, err := lookupEncoding(rf.Encoding)
		if err != nil {
			return nil, err
		}
		if !isUTF8(e) {
			// The cells were decoded from this encoding, so it holds them; a
			// replacement character a broken byte was read as is all it may lack.
			sw.enc = transform.NewWriter(w, encoding.ReplaceUnsupported(e.NewEncoder()))
			w = sw.enc
		}
	case rf.BOM:
		if _, err := w.Write(bomUTF8); err != nil {
			return nil, fmt.Errorf("processors: write subset: %w", err)
		}
	}
	sw.cw = csv.NewWriter(w)
	sw.cw.Comma = rune(rf.Comma)
	// Line ends as LF: with CRLF the csv package would also turn a line break
	// inside a quoted cell into CRLF, and the cell would read back otherwise.
	sw.cw.UseCRLF = false
	if err := sw.cw.Write(header); err != nil {
		return nil, fmt.Errorf("processors: write subset header: %w", err)
	}
	sw.line = 1
	return sw, nil
}

// Write writes rec on its line, after blank lines up to it. Records must
// come in the order of their lines, after the header's.
func (w *SubsetWriter) Write(rec Record) error {
	if rec.Line <= w.line {
		return fmt.Errorf("processors: write subset: line %d after line %d", rec.Line, w.line)
	}
	blank := []string{""} // a single empty cell is written as an empty line
	for w.line+1 < rec.Line {
		if err := w.cw.Write(blank); err != nil {
			return fmt.Errorf("processors: write subset: %w", err)
		}
		w.line++
	}
	if err := w.cw.Write(rec.Fields); err != nil {
		return fmt.Errorf("processors: write subset line %d: %w", rec.Line, err)
	}
	w.line = rec.Line
	return nil
}

// Flush writes what is buffered (and ends the encoding) and reports any error
// of an earlier Write. Nothing may be written after it.
func (w *SubsetWriter) Flush() error {
	w.cw.Flush()
	err := w.cw.Error()
	if w.enc != nil {
		err = errors.Join(err, w.enc.Close())
	}
	if err != nil {
		return fmt.Errorf("processors: write subset: %w", err)
	}
	return nil
}
