package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/outcome"
)

// Ops run a file again in two ways, each a new received file linked to the
// original and asked for by someone (its actor, also in the audit log):
//
//   - a reprocess runs the kept bytes of a QUARANTINED file again, once its
//     brand's config is mended: its original's bytes, under the current
//     config. It is refused while an earlier reprocess of the file waits or
//     once one ended other than QUARANTINED (the file was reprocessed: see
//     that one), for bytes that were not kept (over the size limit) or that
//     its source refused (a mail refused whole), and when the same bytes were
//     applied (or wait to be) as another file. A file given to the command
//     line is not reprocessed: whoever gave it applies it again.
//   - a retry holds the rows of a COMPLETED file that were rejected
//     ACTION_NOT_FOUND or INQUIRY_NOT_FOUND (RetryableCodes) and that no
//     earlier retry of it applied or rejected otherwise (RetryRows), each at
//     the line it has in the original. A row is applied at most once: a
//     retry holds only such rows, one retry of a file waits at a time, and a
//     retry built while another was made is refused (Rerun.Seen).
//
// The checks run in the transaction that records the new file, under the
// brand's lock, so two requests at once make one file.

// Rerun makes a received file a new run of an earlier one (ReceiveParams.Rerun).
type Rerun struct {
	Of    int64  // the file run again
	Retry bool   // a retry of Of's rejected rows; false: a reprocess of quarantined Of
	Kind  string // a retry's kind: its original's
	Actor string // who asked: "cli:alice", "web:bob"
	// Seen, for a retry, is the newest finished retry of Of there was when
	// its rows were chosen (RetryRows); if there is another now (made since,
	// or waiting then), the retry is refused, for it may hold rows that one
	// applies.
	Seen int64
	// Rows, for a retry, is how many rows it holds, for the audit log.
	Rows int
}

// RetryableCodes are the rejections a retry runs again: those a later
// tracking export or inquiry import can mend.
var RetryableCodes = []outcome.Code{outcome.ActionNotFound, outcome.InquiryNotFound}

// RefusedError says why a file cannot be run again, in words ops can act on.
type RefusedError struct {
	FileID int64
	Retry  bool
	Reason string
}

func (e *RefusedError) Error() string {
	what := "reprocessed"
	if e.Retry {
		what = "retried"
	}
	return fmt.Sprintf("file %d cannot be %s: %s", e.FileID, what, e.Reason)
}

func refuse(r Rerun, format string, args ...any) error {
	return &RefusedError{FileID: r.Of, Retry: r.Retry, Reason: fmt.Sprintf(format, args...)}
}

// Reply is what answering a file needs once no source lists it, recorded as
// the file is received and copied to the files split from it and made from
// it: the source (the file's own), the name the brand sent (an archive's for
// its files), and for mail whom to answer and the message to reply to.
type Reply struct {
	Name      string   `json:"name"`
	To        string   `json:"to,omitempty"`          // mail: the sender's address
	InReplyTo string   `json:"in_reply_to,omitempty"` // mail: the Message-ID, without angle brackets
	NotTaken  []string `json:"not_taken,omitempty"`   // mail: the parts not taken as data files, as the brand reads them
}

// IsZero reports a Reply that was never recorded.
func (r Reply) IsZero() bool {
	return r.Name == "" && r.To == "" && r.InReplyTo == "" && len(r.NotTaken) == 0
}

// stored is the reply as the ledger keeps it (jsonb; nil: none): names and
// addresses escaped as names are (names.go), so their bytes come back exactly.
func (r Reply) stored() []byte {
	if r.IsZero() {
		return nil
	}
	s := Reply{Name: storedName(r.Name), To: storedName(r.To), InReplyTo: storedName(r.InReplyTo)}
	for _, n := range r.NotTaken {
		s.NotTaken = append(s.NotTaken, safetext.Printable(n))
	}
	b, _ := json.Marshal(s) // strings only: cannot fail
	return b
}

func loadReply(b []byte) (Reply, error) {
	var r Reply
	if len(b) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reply: %w", err)
	}
	r.Name, r.To, r.InReplyTo = nameOf(r.Name), nameOf(r.To), nameOf(r.InReplyTo)
	return r, nil
}

// CheckRerun says, with a *RefusedError, why r cannot be made now, before
// the caller builds the file; Receive checks again as it records it.
func (l *Ledger) CheckRerun(ctx context.Context, r Rerun) error {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("ledger: check a rerun of file %d: %w", r.Of, interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return checkRerun(ctx, tx, 0, r)
}

// checkRerun checks a rerun of a file of brand (0: any) under the brand's lock.
func checkRerun(ctx context.Context, tx pgx.Tx, brand int64, r Rerun) error {
	var owner int64
	var source, status, code, kind string
	var sha []byte
	var bytesKept, sourceRefused bool
	var reprocessOf, retryOf int64
	err := tx.QueryRow(ctx, `
		SELECT brand_id, source, status, coalesce(reason_code, ''), coalesce(kind, ''), sha256, bytes_kept, source_refused,
			coalesce(reprocess_of, 0), coalesce(retry_of, 0)
		FROM received_files WHERE id = $1`, r.Of).
		Scan(&owner, &source, &status, &code, &kind, &sha, &bytesKept, &sourceRefused, &reprocessOf, &retryOf)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("ledger: file %d: %w", r.Of, ErrNoFile)
	case err != nil:
		return interpretError(err)
	case brand != 0 && owner != brand:
		return fmt.Errorf("ledger: file %d was received for another brand", r.Of)
	}
	if r.Retry {
		return checkRetry(ctx, tx, r, outcome.FileStatus(status), kind, retryOf)
	}
	return checkReprocess(ctx, tx, r, owner, source, outcome.FileStatus(status), outcome.QuarantineCode(code), sha,
		bytesKept, sourceRefused, retryOf)
}

func checkReprocess(ctx context.Context, tx pgx.Tx, r Rerun, brand int64, source string, status outcome.FileStatus,
	code outcome.QuarantineCode, sha []byte, bytesKept, sourceRefused bool, retryOf int64) error {
	switch {
	case status == outcome.Received:
		return refuse(r, "it is not applied yet")
	case status != outcome.Quarantined:
		hint := ""
		if status == outcome.Completed {
			hint = "; to run its rejected rows again, retry them (files retry-rejected)"
		}
		return refuse(r, "it is %s, not QUARANTINED%s", status, hint)
	case retryOf != 0:
		// What a reprocess of it applied, no later retry of file retryOf would know of.
		return refuse(r, "it is a retry of file %d, which applied none of its rows: retry file %d again instead", retryOf, retryOf)
	case source == "cli":
		// Whoever gave it has it; it applied nothing, so applying it again is no duplicate.
		return refuse(r, "it was given to the command line: once the config is mended, apply the file again (returnsd apply)")
	case sourceRefused || code.SenderRefused():
		return refuse(r, "its source refused it (%s): the bytes kept are what the source refused, not a data file; "+
			"once the source allows it, have the brand send the file again", code)
	case !bytesKept:
		return refuse(r, "its bytes were not kept (%s): have the brand send it again", code)
	}
	var other int64
	var otherStatus string
	err := tx.QueryRow(ctx, `
		SELECT id, status FROM received_files
		WHERE reprocess_of = $1 AND status <> 'QUARANTINED' ORDER BY id DESC LIMIT 1`, r.Of).Scan(&other, &otherStatus)
	switch {
	case err == nil && otherStatus == string(outcome.Received):
		return refuse(r, "it is being reprocessed as file %d, which waits to be applied", other)
	case err == nil:
		return refuse(r, "it was reprocessed as file %d, which ended %s", other, otherStatus)
	case !errors.Is(err, pgx.ErrNoRows):
		return interpretError(err)
	}
	err = tx.QueryRow(ctx, `
		SELECT id, status FROM received_files
		WHERE brand_id = $1 AND sha256 = $2 AND status IN ('COMPLETED', 'RECEIVED') AND retry_of IS NULL
		ORDER BY status = 'COMPLETED' DESC, id LIMIT 1`, brand, sha).Scan(&other, &otherStatus)
	switch {
	case err == nil && otherStatus == string(outcome.Received):
		return refuse(r, "the same bytes wait to be applied as file %d", other)
	case err == nil:
		return refuse(r, "the same bytes were applied as file %d", other)
	case !errors.Is(err, pgx.ErrNoRows):
		return interpretError(err)
	}
	return nil
}

func checkRetry(ctx context.Context, tx pgx.Tx, r Rerun, status outcome.FileStatus, kind string, retryOf int64) error {
	switch {
	case retryOf != 0:
		return refuse(r, "it is a retry itself: retry file %d, its original", retryOf)
	case status == outcome.Received:
		return refuse(r, "it is not applied yet")
	case status != outcome.Completed:
		hint := ""
		if status == outcome.Quarantined {
			hint = "; once its config is mended, reprocess it (files reprocess)"
		}
		return refuse(r, "it is %s, not COMPLETED: none of its rows were applied or rejected%s", status, hint)
	case kind == KindArchive:
		return refuse(r, "it is an archive split into files: retry each of them")
	case kind != "action-updates" && kind != "inquiry-resolutions":
		return refuse(r, "it is a file of %s; only a brand's action updates and inquiry resolutions are retried", kind)
	}
	var waiting, newest int64
	err := tx.QueryRow(ctx, `
		SELECT coalesce(max(id) FILTER (WHERE status = 'RECEIVED'), 0), coalesce(max(id), 0)
		FROM received_files WHERE retry_of = $1`, r.Of).Scan(&waiting, &newest)
	switch {
	case err != nil:
		return interpretError(err)
	case waiting != 0:
		return refuse(r, "a retry of it, file %d, waits to be applied", waiting)
	case newest != r.Seen:
		return refuse(r, "another retry of it, file %d, was made or applied while this one was built: ask again", newest)
	}
	return nil
}

// RetryRows returns the lines of a file's rows that a retry of it holds now,
// in order: those rejected with one of RetryableCodes, less those an earlier
// retry of it applied or rejected otherwise (a retry keeps each row's line,
// so lines name the same rows in the original and its retries). newest is
// the newest retry of it that was finished, for Rerun.Seen.
func (l *Ledger) RetryRows(ctx context.Context, fileID int64) (lines []int, newest int64, err error) {
	err = func() error {
		tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return interpretError(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		codes := make([]string, len(RetryableCodes))
		for i, c := range RetryableCodes {
			codes[i] = string(c)
		}
		rows, err := tx.Query(ctx, `
			SELECT r.line FROM file_rows r
			WHERE r.file_id = $1 AND r.outcome = 'REJECTED' AND r.code = ANY($2)
				AND NOT EXISTS (
					SELECT 1 FROM received_files t JOIN row_outcomes o ON o.file_id = t.id AND o.line = r.line
					WHERE t.retry_of = $1 AND NOT (o.outcome = 'REJECTED' AND o.code = ANY($2)))
			ORDER BY r.line`, fileID, codes)
		if err != nil {
			return interpretError(err)
		}
		if lines, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil {
			return interpretError(err)
		}
		// A retry still waiting has no outcomes yet: the lines above may hold
		// rows it will apply. It is not counted seen, so a retry built on
		// these lines is refused once that one exists (checkRetry).
		return interpretError(tx.QueryRow(ctx, `
			SELECT coalesce(max(id) FILTER (WHERE status <> 'RECEIVED'), 0) FROM received_files WHERE retry_of = $1`,
			fileID).Scan(&newest))
	}()
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: rows of file %d to retry: %w", fileID, err)
	}
	return lines, newest, nil
}

// Reruns returns the files made from a file (reprocesses and retries of
// it), oldest first.
func (l *Ledger) Reruns(ctx context.Context, fileID int64) ([]ReceivedFile, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+receivedFileColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE f.reprocess_of = $1 OR f.retry_of = $1 ORDER BY f.id`, fileID)
	if err != nil {
		return nil, fmt.Errorf("ledger: reruns of file %d: %w", fileID, interpretError(err))
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReceivedFile, error) { return scanReceivedFile(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: reruns of file %d: %w", fileID, interpretError(err))
	}
	return files, nil
}

// MarkAnswered records that a finished file's result or receipt reached its
// brand (or that it has none to send).
func (l *Ledger) MarkAnswered(ctx context.Context, fileID int64) error {
	_, err := l.pool.Exec(ctx, `
		UPDATE received_files SET answered_at = now() WHERE id = $1 AND answered_at IS NULL`, fileID)
	if err != nil {
		return fmt.Errorf("ledger: file %d answered: %w", fileID, interpretError(err))
	}
	return nil
}

// auditRerun records who asked for a rerun and what it made.
func auditRerun(ctx context.Context, tx pgx.Tx, brand int64, r Rerun, rec Received) error {
	e := AuditEntry{Actor: r.Actor, Action: AuditReprocess, FileID: r.Of,
		Detail: map[string]any{"new_file_id": rec.FileID, "status": rec.Status}}
	if r.Retry {
		e.Action = AuditRetryRejected
		e.Detail["rows"] = r.Rows
	}
	return insertAudit(ctx, tx, brand, e)
}
