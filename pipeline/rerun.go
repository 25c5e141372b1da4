package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/processors"
)

// Reruns: a file run again as a new received file linked to it, asked for by
// someone (ledger/rerun.go says when each is refused). The new file is only
// received here; it is applied like any (ApplyReceived, in its brand's order,
// under the brand's config as it is then) and answered like any.

// ReprocessParams says which quarantined file is run again, by whom.
type ReprocessParams struct {
	File  ledger.ReceivedFile // the quarantined file
	Actor string              // "cli:alice", "web:bob"
	// Then runs in the transaction that records the new file, as
	// ReceiveParams.Then: the daemon enqueues its jobs there.
	Then func(ctx context.Context, tx pgx.Tx, r ledger.Received) error
}

// Reprocess receives the kept bytes of a quarantined file again, as a new
// file linked to it (an archive is split again, as its source's files are).
// It returns how the new file was received: RECEIVED, to be applied, or
// QUARANTINED at once (an archive still unsafe). A file that cannot be
// reprocessed is a *ledger.RefusedError.
func (p *Pipeline) Reprocess(ctx context.Context, rp ReprocessParams) (Result, error) {
	rerun := &ledger.Rerun{Of: rp.File.ID, Actor: rp.Actor}
	if err := p.Ledger.CheckRerun(ctx, *rerun); err != nil {
		return Result{}, err
	}
	limits := p.Limits.WithDefaults()
	if rp.File.Size > limits.MaxFileBytes {
		return Result{}, &ledger.RefusedError{FileID: rp.File.ID, Reason: fmt.Sprintf(
			"it is %d bytes, over limits.max_file_bytes (%d)", rp.File.Size, limits.MaxFileBytes)}
	}
	f, size, err := p.spool(ctx, rp.File)
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	params := ReceiveParams{Brand: rp.File.Brand, Source: rp.File.Source, Name: rp.File.Name, Then: rp.Then,
		Split: rp.File.Source != "cli", Reply: rp.File.Reply, rerun: rerun}
	var res Result
	err = p.retry(ctx, func() error {
		var err error
		res, err = p.receive(ctx, params, f, size, limits)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("reprocess file %d: %w", rp.File.ID, err)
	}
	return res, nil
}

// RetryParams says which completed file's rejected rows are retried, by whom.
type RetryParams struct {
	File ledger.ReceivedFile // the completed file
	// Format is its brand's file format as it is now: the original's bytes
	// are read in it, and the retry written to be read in it.
	Format processors.Format
	Actor  string // "cli:alice", "web:bob"
	// Then runs in the transaction that records the new file, as ReceiveParams.Then.
	Then func(ctx context.Context, tx pgx.Tx, r ledger.Received) error
}

// Retry is what RetryRejected made.
type Retry struct {
	Result
	Rows int // the rows the retry holds
}

// RetryRejected builds a new file of a completed file's header and those of
// its rows a retry holds now (ledger.RetryRows: rejected ACTION_NOT_FOUND or
// INQUIRY_NOT_FOUND, and not applied or otherwise rejected by an earlier
// retry), each at the line it has in the original (processors.SubsetWriter),
// in the original's delimiter and encoding (processors.Dialect.SubsetFormat),
// and receives it linked to the original, named <stem>_retry.csv. The lines
// of its outcomes and result are the original's. A file that cannot be
// retried, or has no row to retry, is a *ledger.RefusedError.
func (p *Pipeline) RetryRejected(ctx context.Context, rp RetryParams) (Retry, error) {
	refused := func(format string, args ...any) (Retry, error) {
		return Retry{}, &ledger.RefusedError{FileID: rp.File.ID, Retry: true, Reason: fmt.Sprintf(format, args...)}
	}
	lines, newest, err := p.Ledger.RetryRows(ctx, rp.File.ID)
	if err != nil {
		return Retry{}, err
	}
	rerun := &ledger.Rerun{Of: rp.File.ID, Retry: true, Kind: rp.File.Kind, Actor: rp.Actor, Seen: newest, Rows: len(lines)}
	if err := p.Ledger.CheckRerun(ctx, *rerun); err != nil {
		return Retry{}, err
	}
	if len(lines) == 0 {
		return refused("none of its rows is rejected %v and not yet retried", ledger.RetryableCodes)
	}
	orig, size, err := p.spool(ctx, rp.File)
	if err != nil {
		return Retry{}, err
	}
	defer os.Remove(orig.Name())
	defer orig.Close()
	limits := p.Limits.WithDefaults()
	subset, err := os.CreateTemp(p.spoolDir(), fmt.Sprintf("retry-%d-*.csv", rp.File.ID))
	if err != nil {
		return Retry{}, fmt.Errorf("spool: %w", err)
	}
	defer os.Remove(subset.Name())
	defer subset.Close()
	written, err := writeSubset(subset, orig, size, rp.File.Name, rp.Format, limits, lines)
	var fe *processors.FileError
	if errors.As(err, &fe) {
		return refused("its bytes do not read under the brand's file_format as it is now: %s", fe)
	}
	if err != nil {
		return Retry{}, err
	}
	info, err := subset.Stat()
	if err != nil {
		return Retry{}, err
	}
	if info.Size() > limits.MaxFileBytes {
		return refused("the %d rows make a file of %d bytes, over limits.max_file_bytes (%d)", len(lines), info.Size(), limits.MaxFileBytes)
	}
	if err := checkSubset(subset, info.Size(), rp.Format, limits, written); err != nil {
		return refused("its rows cannot be written so that they read back as they were: %v", err)
	}
	params := ReceiveParams{Brand: rp.File.Brand, Source: rp.File.Source, Name: retryName(rp.File.Name), Then: rp.Then,
		Reply: rp.File.Reply, rerun: rerun}
	var res Result
	err = p.retry(ctx, func() error {
		var err error
		res, err = p.receive(ctx, params, subset, info.Size(), limits)
		return err
	})
	if err != nil {
		return Retry{}, fmt.Errorf("retry file %d: %w", rp.File.ID, err)
	}
	return Retry{Result: res, Rows: len(lines)}, nil
}

// retryName is the name of a retry of the file name: returns.xlsx gives
// returns_retry.csv (a CSV whatever the original was), and its result
// result_returns_retry_<id>.csv.
func retryName(name string) string {
	return filename.Stem(name) + "_retry.csv"
}

// writeSubset writes the header of the file orig and its records at lines
// (ascending) to w, and returns them as written.
func writeSubset(w io.Writer, orig *os.File, size int64, name string, format processors.Format,
	limits processors.Limits, lines []int) ([]processors.Record, error) {
	table, err := processors.Open(orig, size, name, format, limits)
	if err != nil {
		return nil, err
	}
	defer table.Close()
	sw, err := processors.NewSubsetWriter(w, table.Header(), table.Dialect().SubsetFormat(format))
	if err != nil {
		return nil, err
	}
	written := make([]processors.Record, 0, len(lines))
	next := 0
	for next < len(lines) {
		rec, err := table.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("line %d has an outcome but no record in the file", lines[next])
		}
		if err != nil {
			return nil, err
		}
		if rec.Line < lines[next] {
			continue
		}
		if rec.Line > lines[next] {
			return nil, fmt.Errorf("line %d has an outcome but no record in the file", lines[next])
		}
		if err := sw.Write(rec); err != nil {
			return nil, err
		}
		written = append(written, processors.Record{Line: rec.Line, Fields: slices.Clone(rec.Fields)})
		next++
	}
	return written, sw.Flush()
}

// checkSubset reads the subset back as the retry will be read and checks it
// holds the records written, at their lines. Only a header made of quotes
// and delimiters could fail it (read with the delimiter detected, it could
// be read in another).
func checkSubset(f *os.File, size int64, format processors.Format, limits processors.Limits, want []processors.Record) error {
	table, err := processors.Open(f, size, "retry.csv", format, limits)
	if err != nil {
		return err
	}
	defer table.Close()
	for _, w := range want {
		rec, err := table.Next()
		if err != nil {
			return fmt.Errorf("line %d: %w", w.Line, err)
		}
		if rec.Line != w.Line || !slices.Equal(rec.Fields, w.Fields) {
			return fmt.Errorf("line %d reads back as line %d, %q", w.Line, rec.Line, rec.Fields)
		}
	}
	if rec, err := table.Next(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("it reads back with more: line %d (%v)", rec.Line, err)
	}
	return nil
}
