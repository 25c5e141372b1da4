package ledger

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/processors"
)

// copyWriter writes rows in PostgreSQL's COPY text format. Staging a million rows
// this way costs one buffered write per field, without boxing values into []any.
type copyWriter struct {
	w     *bufio.Writer
	first bool
}

func (c *copyWriter) sep() {
	if c.first {
		c.first = false
		return
	}
	c.w.WriteByte('\t')
}

func (c *copyWriter) text(s string) {
	c.sep()
	for i := 0; i < len(s); i++ {
		switch b := s[i]; b {
		case '\\':
			c.w.WriteString(`\\`)
		case '\t':
			c.w.WriteString(`\t`)
		case '\n':
			c.w.WriteString(`\n`)
		case '\r':
			c.w.WriteString(`\r`)
		default:
			c.w.WriteByte(b)
		}
	}
}

// textOrNull writes "" as NULL.
func (c *copyWriter) textOrNull(s string) {
	if s == "" {
		c.null()
		return
	}
	c.text(s)
}

func (c *copyWriter) null() {
	c.sep()
	c.w.WriteString(`\N`)
}

func (c *copyWriter) int(n int64) {
	c.sep()
	var buf [20]byte
	c.w.Write(strconv.AppendInt(buf[:0], n, 10))
}

// intOrNull writes 0 as NULL.
func (c *copyWriter) intOrNull(n int64) {
	if n == 0 {
		c.null()
		return
	}
	c.int(n)
}

func (c *copyWriter) bool(b bool) {
	c.sep()
	if b {
		c.w.WriteByte('t')
	} else {
		c.w.WriteByte('f')
	}
}

// time writes the zero time as NULL.
func (c *copyWriter) time(t time.Time) {
	if t.IsZero() {
		c.null()
		return
	}
	c.text(t.Format(time.RFC3339Nano))
}

// amount writes an amount, or NULL when it was not given.
func (c *copyWriter) amount(a money.Amount, given bool) {
	if !given {
		c.null()
		return
	}
	c.text(a.String())
}

// rowError writes a parser's verdict on a row as two columns, code and message.
func (c *copyWriter) rowError(e *processors.RowError) {
	if e == nil {
		c.null()
		c.null()
		return
	}
	c.text(string(e.Code))
	c.text(safetext.Printable(e.Message)) // a message may quote what the file holds, bytes and all
}

func (c *copyWriter) endRow() {
	c.w.WriteByte('\n')
	c.first = true
}

// copyRows streams rows produced by produce into table with COPY. produce runs in
// its own goroutine; an error it returns (a parse failure of the file, say) aborts
// the COPY and is returned as is, so callers can tell it from a database error.
func copyRows(ctx context.Context, tx pgx.Tx, sql string, produce func(c *copyWriter) error) error {
	pr, pw := io.Pipe()
	var produceErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		bw := bufio.NewWriterSize(pw, 256<<10)
		c := &copyWriter{w: bw, first: true}
		produceErr = produce(c)
		if produceErr == nil {
			produceErr = bw.Flush()
		}
		pw.CloseWithError(produceErr)
	}()
	_, err := tx.Conn().PgConn().CopyFrom(ctx, pr, sql)
	pr.CloseWithError(io.ErrClosedPipe) // unblock the producer if COPY stopped early
	<-done
	if produceErr != nil && produceErr != io.ErrClosedPipe {
		return produceErr
	}
	return interpretError(err)
}
