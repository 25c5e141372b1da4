package processors

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/returnsd/returnsd/outcome"
)

// Record is one row of a Table.
type Record struct {
	// Line is the row number a spreadsheet shows for the record; the header is 1
	// (or later, after blank lines). A CSV record whose quoted field spans several
	// physical lines is one row, and a blank line is a row.
	Line int
	// Fields are the record's cells as written, untrimmed. The slice is reused by
	// the next call to Next; the strings stay valid.
	Fields []string
	// Problem, when set, rejects the record whatever its cells say: it could not
	// be read as the brand meant it (a quote opened on it is never closed).
	Problem *RowError
	// Unknown lists, in ascending order, the columns whose value the file does
	// not hold: a workbook's formula saved without its result, or an error value
	// (#N/A, #DIV/0!). Their Fields show what was written instead, "=100*0.6" or
	// "#DIV/0!", never a blank, and a reader that reads such a cell rejects the
	// row UNKNOWN_VALUE. Nil for nearly every row, and for every row of a text
	// file. The slice is reused by the next call to Next.
	Unknown []int
}

// recordSource yields every record of a file, blank ones included, so that line
// numbers stay true. It returns io.EOF at the end.
type recordSource interface {
	next() (Record, error)
}

// Table is one received file read as a header and records, whatever its container
// (plain text, .xlsx, .zip, .gz) and encoding.
type Table struct {
	src      recordSource
	header   []string
	maxRows  int
	rows     int
	progress *progressReaderAt
	opener   *opener
	closers  []func() error
	err      error
}

// Open opens one received file as a table. The container is decided by the magic
// bytes first and by name second; the text encoding by a byte-order mark first and
// f.Encoding second. A file that cannot be read at all is a *FileError: the caller
// quarantines it. Other errors come from reading r and are worth a retry.
//
// Memory stays bounded by the limits, not by the size of the file. A .xlsx's
// shared strings are held in memory (compactly, within the expansion limit), and
// an archive nested in an archive is spooled to a temporary file of at most l's
// sizes, which Close removes.
func Open(r io.ReaderAt, size int64, name string, f Format, l Limits) (*Table, error) {
	l = l.WithDefaults()
	if size > l.MaxFileBytes {
		return nil, &FileError{Code: outcome.FileTooLarge, Reason: fmt.Sprintf(
			"the file is %d bytes, over the limit of %d bytes", size, l.MaxFileBytes)}
	}
	if size <= 0 {
		return nil, &FileError{Code: outcome.EmptyFile, Reason: "the file is empty"}
	}
	if _, err := f.delimiter(); err != nil {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: err.Error()}
	}
	if f.Encoding != "" { // refused even when a BOM would make it moot: the config is wrong
		if _, err := lookupEncoding(f.Encoding); err != nil {
			return nil, &FileError{Code: outcome.Undecodable, Reason: err.Error()}
		}
	}
	o := &opener{
		format:   f,
		limits:   l,
		progress: &progressReaderAt{r: r},
		size:     size,
	}
	src, err := o.openAt(o.progress, size, name, 0)
	t := &Table{src: src, maxRows: l.MaxRows, progress: o.progress, opener: o, closers: o.closers}
	if err == nil {
		err = t.readHeader()
	}
	if err != nil {
		_ = t.Close()
		return nil, o.translate(err)
	}
	return t, nil
}

func (t *Table) readHeader() error {
	for {
		rec, err := t.src.next()
		if err == io.EOF {
			return &FileError{Code: outcome.EmptyFile, Reason: "the file has no header row"}
		}
		if err != nil {
			return err
		}
		if isBlankRecord(rec.Fields) {
			continue
		}
		if rec.Problem != nil {
			return &FileError{Code: outcome.MissingColumn, Reason: fmt.Sprintf(
				"the header row (line %d) opens a quote that is never closed", rec.Line)}
		}
		t.header = make([]string, len(rec.Fields))
		for i, h := range rec.Fields {
			t.header[i] = strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
		}
		return nil
	}
}

// Header returns the header cells, trimmed.
func (t *Table) Header() []string { return t.header }

// Dialect says how the file was written, as far as reading it told.
func (t *Table) Dialect() Dialect { return t.opener.dialect }

// Next returns the next non-blank record, io.EOF at the end, or an error that ends
// the file (a *FileError, or an error reading the received bytes).
func (t *Table) Next() (Record, error) {
	if t.err != nil {
		return Record{}, t.err
	}
	for {
		rec, err := t.src.next()
		if err != nil {
			if err == io.EOF {
				t.progress.pos.Store(t.opener.size) // what follows the data (a zip's directory) counts as read
			} else {
				err = t.opener.translate(err)
			}
			t.err = err
			return Record{}, err
		}
		if isBlankRecord(rec.Fields) && rec.Problem == nil {
			continue
		}
		t.rows++
		if t.rows > t.maxRows {
			t.err = &FileError{Code: outcome.TooManyRows, Reason: fmt.Sprintf(
				"the file has more than %d rows; split it into smaller files", t.maxRows)}
			return Record{}, t.err
		}
		return rec, nil
	}
}

// Offset returns how many bytes of the received file have been read so far, for a
// progress bar.
func (t *Table) Offset() int64 { return t.progress.pos.Load() }

// Close releases what Open holds: decompressors, temporary files.
func (t *Table) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	t.closers = nil
	return errors.Join(errs...)
}

// isBlankRecord reports a record with nothing but spaces in it, as a blank line or
// an emptied spreadsheet row (";;;;") is.
func isBlankRecord(fields []string) bool {
	for _, f := range fields {
		for i := 0; i < len(f); i++ {
			if c := f[i]; c != ' ' && c != '\t' {
				return false
			}
		}
	}
	return true
}

// opener carries what opening one file needs through the layers of containers.
type opener struct {
	format   Format
	limits   Limits
	progress *progressReaderAt
	size     int64 // of the received file
	closers  []func() error
	dialect  Dialect // of the text read, or a workbook's
}

type container int

const (
	plainText container = iota
	zipArchive
	gzipStream
	oleCompound // legacy .xls, or an encrypted .xlsx
	notAsNamed  // named like a container, but without its magic
)

var (
	magicZip      = []byte("PK\x03\x04")
	magicZipEmpty = []byte("PK\x05\x06")
	magicGzip     = []byte{0x1f, 0x8b}
	magicOLE      = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
)

// sniff decides the container by the first bytes, then by the name.
func sniff(head []byte, name string) container {
	switch {
	case bytes.HasPrefix(head, magicZip), bytes.HasPrefix(head, magicZipEmpty):
		return zipArchive
	case bytes.HasPrefix(head, magicGzip):
		return gzipStream
	case bytes.HasPrefix(head, magicOLE):
		return oleCompound
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".xlsx", ".xlsm", ".zip", ".gz", ".gzip", ".xls":
		return notAsNamed
	}
	return plainText
}

func (o *opener) openAt(r io.ReaderAt, size int64, name string, depth int) (recordSource, error) {
	var head [8]byte
	n, err := r.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch sniff(head[:n], name) {
	case zipArchive:
		return o.openZip(r, size, name, depth)
	case gzipStream:
		if err := o.verify(io.NewSectionReader(r, 0, size), name, depth); err != nil {
			return nil, err
		}
	}
	return o.openStream(io.NewSectionReader(r, 0, size), name, depth)
}

// openStream opens what a reader yields: the file itself, or an archive's entry.
func (o *opener) openStream(r io.Reader, name string, depth int) (recordSource, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicOLE))
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch sniff(head, name) {
	case zipArchive:
		return o.openNestedZip(br, name, depth)
	case gzipStream:
		return o.openGzip(br, name, depth)
	case oleCompound:
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%s is a legacy .xls or a password-protected workbook; save it as .xlsx (without a password) or CSV", displayName(name))}
	case notAsNamed:
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%s is named like an archive or workbook but its content is not one", displayName(name))}
	}
	if len(head) == 0 {
		return nil, &FileError{Code: outcome.EmptyFile, Reason: fmt.Sprintf("%s is empty", displayName(name))}
	}
	return o.openText(br)
}

func (o *opener) openText(br *bufio.Reader) (recordSource, error) {
	text, checkUTF8, dialect, err := decodeText(br, o.format.Encoding)
	if err != nil {
		return nil, err
	}
	comma, _ := o.format.delimiter() // checked by Open
	r, err := newCSVReader(text, comma, o.limits, checkUTF8)
	if err != nil {
		return nil, err
	}
	dialect.Comma = r.comma
	o.dialect = dialect
	return r, nil
}

// translate turns what went wrong inside a decompressor into a FileError: a damaged
// archive is the brand's to fix, not ours to retry. An error reading the received
// bytes themselves is passed on as it is.
func (o *opener) translate(err error) error {
	var fe *FileError
	if err == nil || errors.As(err, &fe) || o.progress.err.Load() != nil {
		return err
	}
	return o.damaged("", err)
}

func displayName(name string) string {
	if name == "" {
		return "the file"
	}
	return fmt.Sprintf("%q", name)
}

// printable makes text taken from a file or a library's error fit a one-line
// reason: valid UTF-8, control characters escaped, at most 200 characters.
func printable(s string) string {
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	if r := []rune(q); len(r) > 200 {
		q = string(r[:200]) + "…"
	}
	return q
}

// progressReaderAt remembers where the last read ended (files are read front to
// back, so that is the progress) and whether reading the received bytes failed.
type progressReaderAt struct {
	r   io.ReaderAt
	pos atomic.Int64
	err atomic.Pointer[error]
}

func (p *progressReaderAt) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 { // a damaged archive pointing before its start: not an I/O error
		return 0, errors.New("negative offset")
	}
	n, err := p.r.ReadAt(b, off)
	p.pos.Store(off + int64(n))
	if err != nil && err != io.EOF {
		p.err.Store(&err)
	}
	return n, err
}
