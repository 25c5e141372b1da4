package processors

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/returnsd/returnsd/outcome"
)

// maxColumns is the widest record accepted. It is Excel's own column limit, so no
// spreadsheet a brand can save is refused, while a line of millions of delimiters
// cannot make the field index grow without bound.
const maxColumns = 16384

// csvBufferSize is how much of the decoded text is held at once. It bounds the
// memory of the reader together with the record limits, whatever the file size.
const csvBufferSize = 64 << 10

// csvReader is a streaming RFC 4180 reader. Unlike encoding/csv it checks the size
// of a field while the field is being read, so a 1 GB line costs no more than
// MaxFieldBytes of memory before it is refused. It is lenient where real exports
// are sloppy: CRLF, LF or CR line ends, a stray quote inside an unquoted field is
// kept as text, and text after a closing quote is appended to the field.
//
// A quote that is never closed would swallow every line after it into one field:
// one outcome for many lines, some of them the brand's good rows. So a quoted
// field that crosses a line end and then reaches the end of the text, or grows
// past MaxFieldBytes, ends its record at that line end with a Problem, and the
// lines after it are read again as records of their own.
//
// Records are numbered as a spreadsheet numbers rows: one record is one row even
// when a quoted field spans several lines, and a blank line is a row too (it is
// counted, not returned).
type csvReader struct {
	r        io.Reader
	buf      []byte
	pos, end int
	rerr     error // sticky error of r; io.EOF at the end of the text

	comma     byte
	maxField  int
	maxRecord int
	checkUTF8 bool // the text was not transcoded, so it may hold invalid UTF-8

	line    int    // number of the record read last
	rec     []byte // the unescaped bytes of the current record's fields, end to end
	ends    []int  // the end of each field in rec
	fields  []string
	problem *RowError // of the current record: a quote it opens is never closed

	// Of the quoted field being read, once it has crossed a line end: where in
	// rec that line end is, whether it was a CR, and the raw bytes read since it,
	// to be read again if the quote turns out never to close.
	breakAt int
	breakCR bool
	raw     []byte
}

// newCSVReader reads records from UTF-8 text. comma 0 means detect the delimiter
// from the header line. A first line "sep=;" (Excel's delimiter hint) sets the
// delimiter and is not counted as a row, as Excel does not show it either.
func newCSVReader(r io.Reader, comma byte, l Limits, checkUTF8 bool) (*csvReader, error) {
	c := &csvReader{
		r:         r,
		buf:       make([]byte, csvBufferSize),
		maxField:  l.MaxFieldBytes,
		maxRecord: max(4*l.MaxFieldBytes, 1<<20),
		checkUTF8: checkUTF8,
	}
	// Read ahead as far as the buffer goes so the header line can be inspected.
	for c.end < len(c.buf) && c.rerr == nil {
		var n int
		n, c.rerr = c.r.Read(c.buf[c.end:])
		c.end += n
	}
	if c.rerr != nil && c.rerr != io.EOF {
		return nil, c.rerr
	}
	head := c.buf[:c.end]
	if len(head) >= 5 && bytes.EqualFold(head[:4], []byte("sep=")) {
		rest := head[5:]
		if len(rest) == 0 || rest[0] == '\r' || rest[0] == '\n' {
			if comma == 0 {
				comma = head[4]
			}
			c.pos = 5
			if len(rest) > 0 && rest[0] == '\r' {
				c.pos++
			}
			if c.pos < c.end && c.buf[c.pos] == '\n' {
				c.pos++
			}
		}
	}
	if comma == 0 {
		comma = detectDelimiter(c.buf[c.pos:c.end])
	}
	c.comma = comma
	return c, nil
}

// detectDelimiter picks the most frequent of , ; \t | outside quotes in the first
// non-blank line; ties go to the earlier in that list, and none at all means ",".
func detectDelimiter(b []byte) byte {
	candidates := [...]byte{',', ';', '\t', '|'}
	var counts [len(candidates)]int
	b = bytes.TrimLeft(b, "\r\n")
	inQuotes := false
scan:
	for _, ch := range b {
		switch {
		case ch == '"':
			inQuotes = !inQuotes
		case inQuotes:
		case ch == '\n' || ch == '\r':
			break scan
		default:
			for i, d := range candidates {
				if ch == d {
					counts[i]++
				}
			}
		}
	}
	best := 0
	for i := range candidates {
		if counts[i] > counts[best] {
			best = i
		}
	}
	return candidates[best]
}

// fill refills the buffer once everything in it has been consumed. It returns
// false at the end of the text or on a read error (kept in rerr).
func (c *csvReader) fill() bool {
	if c.pos < c.end {
		return true
	}
	c.pos, c.end = 0, 0
	for empty := 0; c.rerr == nil; empty++ {
		var n int
		n, c.rerr = c.r.Read(c.buf)
		if n > 0 {
			c.end = n
			return true
		}
		if empty > 100 {
			c.rerr = io.ErrNoProgress
		}
	}
	return false
}

// next returns the next record, or io.EOF. Its Fields slice is reused by the
// following call; the strings are not (they share one allocation per record).
func (c *csvReader) next() (Record, error) {
	c.rec = c.rec[:0]
	c.ends = c.ends[:0]
	c.problem = nil
	// Blank lines are counted here, in a tight loop, and never returned: a file
	// of a billion line feeds is read at the speed of memory.
	for {
		if !c.fill() {
			return Record{}, c.endErr()
		}
		ch := c.buf[c.pos]
		if ch != '\n' && ch != '\r' {
			break
		}
		c.line++
		c.pos++
		if ch == '\r' && c.fill() && c.buf[c.pos] == '\n' {
			c.pos++
		}
	}
	c.line++
	for {
		fieldStart := len(c.rec)
		quoted := false
		if c.buf[c.pos] == '"' {
			quoted = true
			c.pos++
			closed, err := c.readQuoted(fieldStart)
			if err != nil {
				return Record{}, err
			}
			if !closed {
				c.ends = append(c.ends, len(c.rec))
				return c.finish()
			}
		}
		// The unquoted field, or what follows a closing quote.
		for {
			if !c.fill() {
				if c.rerr != io.EOF {
					return Record{}, c.rerr
				}
				c.ends = append(c.ends, len(c.rec))
				return c.finish()
			}
			chunk := c.buf[c.pos:c.end]
			i := 0
			for i < len(chunk) {
				if ch := chunk[i]; ch == c.comma || ch == '\n' || ch == '\r' {
					break
				}
				i++
			}
			c.rec = append(c.rec, chunk[:i]...)
			c.pos += i
			if err := c.checkSize(fieldStart, quoted); err != nil {
				return Record{}, err
			}
			if i == len(chunk) {
				continue
			}
			ch := chunk[i]
			c.pos++
			c.ends = append(c.ends, len(c.rec))
			if ch == c.comma {
				if len(c.ends) >= maxColumns {
					return Record{}, &FileError{Code: outcome.FieldTooLarge,
						Reason: fmt.Sprintf("line %d has more than %d columns", c.line, maxColumns)}
				}
				// A delimiter at the very end of the text still opens an empty field.
				if !c.fill() {
					if c.rerr != io.EOF {
						return Record{}, c.rerr
					}
					c.ends = append(c.ends, len(c.rec))
					return c.finish()
				}
				break
			}
			if ch == '\r' && c.fill() && c.buf[c.pos] == '\n' {
				c.pos++
			}
			if c.rerr != nil && c.rerr != io.EOF {
				return Record{}, c.rerr
			}
			return c.finish()
		}
	}
}

// readQuoted reads a quoted field after its opening quote, up to and including
// the closing quote; "" inside is one quote. closed is false when the quote never
// closes (see csvReader): the record then ends, with its problem set.
func (c *csvReader) readQuoted(fieldStart int) (closed bool, err error) {
	c.breakAt = -1
	c.raw = c.raw[:0]
	for {
		if !c.fill() {
			if c.rerr != io.EOF {
				return false, c.rerr
			}
			return false, c.unclosed()
		}
		chunk := c.buf[c.pos:c.end]
		i := bytes.IndexByte(chunk, '"')
		if i < 0 {
			c.appendQuoted(chunk)
			c.pos = c.end
			if err := c.checkSize(fieldStart, true); err != nil {
				return false, c.unclosedOr(err)
			}
			continue
		}
		c.appendQuoted(chunk[:i])
		c.pos += i + 1
		c.appendRaw('"')
		if err := c.checkSize(fieldStart, true); err != nil {
			return false, c.unclosedOr(err)
		}
		if c.fill() && c.buf[c.pos] == '"' {
			c.rec = append(c.rec, '"')
			c.appendRaw('"')
			c.pos++
			continue
		}
		if c.rerr != nil && c.rerr != io.EOF {
			return false, c.rerr
		}
		return true, nil
	}
}

// appendQuoted adds text read inside quotes to the field, and keeps what comes
// after the field's first line end for reading again.
func (c *csvReader) appendQuoted(b []byte) {
	if c.breakAt < 0 {
		if j := bytes.IndexAny(b, "\r\n"); j >= 0 {
			c.breakAt, c.breakCR = len(c.rec)+j, b[j] == '\r'
			c.raw = append(c.raw, b[j+1:]...)
		}
	} else {
		c.raw = append(c.raw, b...)
	}
	c.rec = append(c.rec, b...)
}

func (c *csvReader) appendRaw(b byte) {
	if c.breakAt >= 0 {
		c.raw = append(c.raw, b)
	}
}

// unclosed ends a record whose quote never closes: the record keeps what its own
// line holds and is rejected, and the lines after it are read again, from the
// bytes kept since the line end followed by what is still unread.
func (c *csvReader) unclosed() error {
	c.problem = &RowError{Code: outcome.MalformedRow, Message: "A quote opened on this row is never closed, " +
		"so the rows after it cannot be told apart from it; close the quote (or double a quote inside a value) " +
		"and send the row again. The rows after it were read on their own."}
	if c.breakAt < 0 {
		return nil // the quote opened on the last line: nothing follows to read again
	}
	c.rec = c.rec[:c.breakAt]
	again := append(c.raw, c.buf[c.pos:c.end]...)
	if c.breakCR && len(again) > 0 && again[0] == '\n' {
		again = again[1:] // a CRLF line end: the LF belongs to the line end too
	}
	c.r = io.MultiReader(bytes.NewReader(again), c.r)
	c.pos, c.end = 0, 0
	if c.rerr == io.EOF {
		c.rerr = nil // the end comes again, after the bytes read again
	}
	c.raw = nil // owned by the reader of the bytes read again
	return nil
}

// unclosedOr treats a field over the size limit as a quote never closed when
// the field crossed a line end (it swallowed the lines after it); else err stands.
func (c *csvReader) unclosedOr(err error) error {
	if c.breakAt < 0 {
		return err
	}
	return c.unclosed()
}

func (c *csvReader) checkSize(fieldStart int, quoted bool) error {
	if n := len(c.rec) - fieldStart; n > c.maxField {
		reason := fmt.Sprintf("line %d has a field of more than %d bytes", c.line, c.maxField)
		if quoted {
			reason += " (a quote that is never closed can cause this)"
		}
		return &FileError{Code: outcome.FieldTooLarge, Reason: reason}
	}
	if len(c.rec) > c.maxRecord {
		return &FileError{Code: outcome.FieldTooLarge,
			Reason: fmt.Sprintf("line %d is longer than %d bytes", c.line, c.maxRecord)}
	}
	return nil
}

func (c *csvReader) endErr() error {
	if c.rerr == nil {
		return io.EOF
	}
	return c.rerr
}

// finish turns the record's bytes into strings: one allocation for the record,
// the fields being substrings of it.
func (c *csvReader) finish() (Record, error) {
	if c.checkUTF8 {
		if err := checkText(c.rec, c.line); err != nil {
			return Record{}, err
		}
	}
	s := string(c.rec)
	c.fields = c.fields[:0]
	start := 0
	for _, e := range c.ends {
		c.fields = append(c.fields, s[start:e])
		start = e
	}
	return Record{Line: c.line, Fields: c.fields, Problem: c.problem}, nil
}

// checkText refuses bytes that are not UTF-8 text: the usual cause is a file saved
// in a legacy encoding (é as 0xE9) or UTF-16 without a byte-order mark (NUL bytes).
func checkText(b []byte, line int) error {
	if utf8.Valid(b) {
		if bytes.IndexByte(b, 0) < 0 {
			return nil
		}
		return &FileError{Code: outcome.Undecodable, Reason: fmt.Sprintf(
			"line %d contains NUL bytes: the file may be UTF-16 without a byte-order mark, "+
				"or not a text file; save it as UTF-8 or set file_format.encoding", line)}
	}
	bad := b[0]
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			bad = b[i]
			break
		}
		i += size
	}
	return &FileError{Code: outcome.Undecodable, Reason: fmt.Sprintf(
		"line %d is not valid UTF-8 (byte 0x%02X); if the file uses another encoding, "+
			"set file_format.encoding (e.g. windows-1252)", line, bad)}
}
