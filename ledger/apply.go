package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// ApplyParams says which received file is applied, by whom, and how.
type ApplyParams struct {
	FileID int64  // from Receive; ignored with DryRun
	Brand  string // the brand whose source delivered the file: the only brand it can touch
	Actor  string // who, for the ledger events: "cli:alice", "source:acme-sftp"
	// DryRun validates every row against the ledger and reports the outcomes, then
	// rolls everything back: nothing is changed, not even the record of the file.
	DryRun bool
	// At is the clock: what "now" means to the file's rules (a date in the
	// future, an inquiry's window, a lock or payout date already past). Zero
	// means the time the apply starts.
	At time.Time
	// Inspect, when set, reads the outcomes inside the transaction, before it
	// commits or (with DryRun) rolls back. A dry run writes its result file here.
	Inspect func(ctx context.Context, outcomes OutcomeReader) error
}

// Summary counts what happened to the rows of a file.
type Summary struct {
	FileID    int64
	Status    outcome.FileStatus
	Rows      int
	Applied   int
	Rejected  int
	Duplicate int
	// DuplicateOf is the file whose bytes a DUPLICATE_FILE's were.
	DuplicateOf int64
	// ByCode counts rejected and duplicate rows by their code.
	ByCode map[outcome.Code]int
	// AlreadyFinished says the file was finished when this apply got its
	// brand's lock (by another replica): it changed nothing, and the summary
	// is of how the file ended.
	AlreadyFinished bool
}

// OutcomeReader calls fn with the outcome of every row of a file, in line order.
type OutcomeReader func(ctx context.Context, fn func(outcome.Row) error) error

var errRollback = errors.New("dry run: roll back")

// applyFile runs the common frame of every file kind: one transaction, the brand's
// lock, the file's status check, then stage (COPY the rows), then process (the
// set-based statements), then the summary and the file's COMPLETED mark, which
// commit together with the changes. A crash anywhere before the commit leaves
// nothing; a rerun applies the file from scratch.
func (l *Ledger) applyFile(ctx context.Context, p ApplyParams, kind string,
	stage func(tx pgx.Tx) error, process func(tx pgx.Tx, brand, file int64, t *tally) error) (Summary, error) {
	var sum Summary
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		brand, err := lockBrandBySlug(ctx, tx, p.Brand)
		if err != nil {
			return err
		}
		// Sorts and hashes over a whole file's rows should stay in memory. And
		// the ledger is read through its indexes: at the default cost of a
		// random read (4, a disk's), a file of 2% of the ledger hashes every
		// action instead of probing its own, and the cost of a daily file grows
		// with the ledger. The pages an apply reads are in memory or on SSD.
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '256MB'; SET LOCAL random_page_cost = 1.1"); err != nil {
			return interpretError(err)
		}
		file := p.FileID
		if p.DryRun {
			// A placeholder the rollback removes: events and outcomes need a file to point at.
			err := tx.QueryRow(ctx, `
				INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept)
				VALUES ($1, 'dry-run', 'dry-run', 0, '', 'RECEIVED', false) RETURNING id`, brand).Scan(&file)
			if err != nil {
				return interpretError(err)
			}
		} else {
			var status string
			var owner int64
			err := tx.QueryRow(ctx, "SELECT status, brand_id FROM received_files WHERE id = $1", file).Scan(&status, &owner)
			if err != nil {
				return fmt.Errorf("file %d: %w", file, interpretError(err))
			}
			if owner != brand {
				return fmt.Errorf("file %d was received for another brand", file)
			}
			if status != string(outcome.Received) {
				// Another replica finished it while we waited for the brand's lock.
				sum, err = summarize(ctx, tx, file)
				sum.AlreadyFinished = true
				return err
			}
			// The same bytes under another name, received while the first was
			// waiting, and applied since: this one has no effect (SPEC §4).
			if sum, err = endIfApplied(ctx, tx, brand, file); err != nil || sum.Status == outcome.DuplicateFile {
				return err
			}
		}
		began := time.Now()
		if err := stage(tx); err != nil {
			return err
		}
		staged := time.Now()
		t := &tally{sum: Summary{FileID: file, ByCode: map[outcome.Code]int{}}}
		if err := process(tx, brand, file, t); err != nil {
			return err
		}
		processed := time.Now()
		if sum, err = complete(ctx, tx, file, kind, t); err != nil {
			return err
		}
		l.logger.DebugContext(ctx, "file applied", "file_id", file, "kind", kind, "rows", sum.Rows,
			"stage", staged.Sub(began), "process", processed.Sub(staged), "summarize", time.Since(processed))
		if p.Inspect != nil {
			if err := p.Inspect(ctx, outcomeReader(tx, file)); err != nil {
				return err
			}
		}
		if p.DryRun {
			sum.FileID = 0
			return errRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		return Summary{}, err
	}
	return sum, nil
}

// endIfApplied ends file as DUPLICATE_FILE when a file of its brand with the
// same bytes is COMPLETED. Receive makes such a file DUPLICATE_FILE at once; it
// keeps one RECEIVED when the first is not applied yet, so each name the brand
// sent is answered on its own. A rerun is never a duplicate (checkRerun).
func endIfApplied(ctx context.Context, tx pgx.Tx, brand, file int64) (Summary, error) {
	var original int64
	err := tx.QueryRow(ctx, `
		SELECT o.id FROM received_files f
		JOIN received_files o ON o.brand_id = f.brand_id AND o.sha256 = f.sha256 AND o.id <> f.id
			AND o.status = 'COMPLETED' AND o.retry_of IS NULL
		WHERE f.id = $1 AND f.brand_id = $2 AND f.reprocess_of IS NULL AND f.retry_of IS NULL
		ORDER BY o.id LIMIT 1`, file, brand).Scan(&original)
	if errors.Is(err, pgx.ErrNoRows) {
		return Summary{}, nil
	}
	if err != nil {
		return Summary{}, interpretError(err)
	}
	d := duplicateRow(original)
	_, err = tx.Exec(ctx, `
		UPDATE received_files SET status = 'DUPLICATE_FILE', duplicate_of = $2, reason = $3, finished_at = now()
		WHERE id = $1`, file, original, d.reason)
	if err != nil {
		return Summary{}, interpretError(err)
	}
	return Summary{FileID: file, Status: outcome.DuplicateFile, DuplicateOf: original, ByCode: map[outcome.Code]int{}}, nil
}

// workRowCounts counts a file's outcomes from its work table, for the kinds whose
// work table holds every row with its outcome (NULL: applied) and code (verdict).
const workRowCounts = `SELECT coalesce(outcome, 'APPLIED'), coalesce(verdict, ''), count(*) FROM work GROUP BY 1, 2`

// tally adds up the outcomes as the statements that decide them report them, so
// completing a file does not read its million outcomes back.
type tally struct{ sum Summary }

// add runs a query returning (outcome, code, count) rows and counts them in.
func (t *tally) add(ctx context.Context, tx pgx.Tx, sql string, args ...any) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return interpretError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var o, code string
		var n int
		if err := rows.Scan(&o, &code, &n); err != nil {
			return err
		}
		if err := t.count(outcome.Outcome(o), outcome.Code(code), n); err != nil {
			return err
		}
	}
	return interpretError(rows.Err())
}

func (t *tally) count(o outcome.Outcome, code outcome.Code, n int) error {
	// The codes are a closed, documented set; one invented in SQL would reach
	// brands unexplained, so it fails the file instead.
	if code != "" && !outcome.IsCode(code) {
		return fmt.Errorf("outcome code %q is not in the documented set (outcome.Codes)", code)
	}
	t.sum.Rows += n
	switch o {
	case outcome.Applied:
		t.sum.Applied += n
	case outcome.Rejected:
		t.sum.Rejected += n
	case outcome.DuplicateRow:
		t.sum.Duplicate += n
	}
	if code != "" {
		t.sum.ByCode[code] += n
	}
	return nil
}

// complete marks the file COMPLETED with its counts and returns its summary. It
// checks that every staged row got exactly one outcome: a row lost here would be
// a row the brand never hears about, so the file fails rather than completes.
func complete(ctx context.Context, tx pgx.Tx, file int64, kind string, t *tally) (Summary, error) {
	sum := t.sum
	var staged int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM stage").Scan(&staged); err != nil {
		return sum, interpretError(err)
	}
	if staged != sum.Rows {
		return sum, fmt.Errorf("file %d: %d rows staged but %d outcomes counted", file, staged, sum.Rows)
	}
	_, err := tx.Exec(ctx, `
		UPDATE received_files SET status = 'COMPLETED', kind = $2, finished_at = now(),
			rows_total = $3, rows_applied = $4, rows_rejected = $5, rows_duplicate = $6
		WHERE id = $1`, file, kind, sum.Rows, sum.Applied, sum.Rejected, sum.Duplicate)
	if err != nil {
		return sum, interpretError(err)
	}
	sum.Status = outcome.Completed
	// The daily report reads the file's rows from these, with its COMPLETED mark.
	return sum, tallyFile(ctx, tx, file, sum.Rows)
}

// FileSummary reads back the summary of a finished file from its outcomes.
func (l *Ledger) FileSummary(ctx context.Context, fileID int64) (Summary, error) {
	var sum Summary
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		sum, err = summarize(ctx, tx, fileID)
		return err
	})
	if err != nil {
		return Summary{}, fmt.Errorf("ledger: summary of file %d: %w", fileID, err)
	}
	return sum, nil
}

// summarize reads back the summary of a file that is already finished.
func summarize(ctx context.Context, tx pgx.Tx, file int64) (Summary, error) {
	t := &tally{sum: Summary{FileID: file, ByCode: map[outcome.Code]int{}}}
	if err := tx.QueryRow(ctx, "SELECT status FROM received_files WHERE id = $1", file).Scan(&t.sum.Status); err != nil {
		return t.sum, interpretError(err)
	}
	err := t.add(ctx, tx, `SELECT outcome, coalesce(code, ''), count(*) FROM row_outcomes WHERE file_id = $1 GROUP BY 1, 2`, file)
	return t.sum, err
}

// Outcomes calls fn with the outcome of every row of a file, in line order.
func (l *Ledger) Outcomes(ctx context.Context, fileID int64, fn func(outcome.Row) error) error {
	return l.inTx(ctx, func(tx pgx.Tx) error {
		return outcomeReader(tx, fileID)(ctx, fn)
	})
}

// outcomesInLineOrder reads a file's outcomes: row_outcomes' two sides, each in
// line order from its own (file_id, line) index, merged (a Merge Append). Read
// through the view they are sorted instead, a million of them on disk: its
// ledger_events side has a WHERE, so PostgreSQL keeps it a subquery of its own
// and forgets the order its index gives. Amounts come as cents, not as text to
// parse.
const outcomesInLineOrder = `
SELECT line, outcome, code, message, action_id, old_amount, new_amount, old_payout, new_payout
FROM (
    (SELECT line, 'APPLIED' AS outcome, '' AS code, '' AS message, action_id,
        (old_amount * 100)::bigint AS old_amount, (new_amount * 100)::bigint AS new_amount,
        (old_payout * 100)::bigint AS old_payout, (new_payout * 100)::bigint AS new_payout
    FROM ledger_events WHERE file_id = $1 ORDER BY line)
    UNION ALL
    (SELECT line, outcome, coalesce(code, ''), coalesce(message, ''), coalesce(action_id, 0),
        NULL, NULL, NULL, NULL
    FROM file_rows WHERE file_id = $1 ORDER BY line)
) o
ORDER BY line`

// outcomeReader reads a file's outcomes in tx, which it ends with enable_sort
// off: whatever the statistics say, merging the two indexed sides beats
// sorting a large file's outcomes.
func outcomeReader(tx pgx.Tx, file int64) OutcomeReader {
	return func(ctx context.Context, fn func(outcome.Row) error) error {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_sort = off"); err != nil {
			return interpretError(err)
		}
		rows, err := tx.Query(ctx, outcomesInLineOrder, file)
		if err != nil {
			return interpretError(err)
		}
		defer rows.Close()
		var r outcome.Row
		var o, code string
		var cents [4]pgtype.Int8
		for rows.Next() {
			if err := rows.Scan(&r.Line, &o, &code, &r.Message, &r.ActionID,
				&cents[0], &cents[1], &cents[2], &cents[3]); err != nil {
				return err
			}
			r.Outcome, r.Code = outcome.Outcome(o), outcome.Code(code)
			r.OldAmount, r.NewAmount = amountOf(cents[0]), amountOf(cents[1])
			r.OldPayout, r.NewPayout = amountOf(cents[2]), amountOf(cents[3])
			if err := fn(r); err != nil {
				return err
			}
		}
		return interpretError(rows.Err())
	}
}

// amountOf is an amount read as cents; nil for NULL.
func amountOf(cents pgtype.Int8) *money.Amount {
	if !cents.Valid {
		return nil
	}
	a := money.Amount(cents.Int64)
	return &a
}

// rowSource is a parser's Next: a row, io.EOF at the end, or an error that stops the file.
type rowSource[T any] func() (T, error)

// eachRow drains next, calling fn for every row.
func eachRow[T any](next rowSource[T], fn func(T)) error {
	for {
		row, err := next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		fn(row)
	}
}
