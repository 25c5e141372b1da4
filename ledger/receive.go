package ledger

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/outcome"
)

// chunkSize is how the original bytes of a file are stored: rows of 1 MiB, so a
// large file is neither one huge value in memory nor a million tiny rows.
const chunkSize = 1 << 20

// ReceiveParams describes a file that has arrived for a brand.
type ReceiveParams struct {
	Brand  string
	Source string // the source's name, or "cli"
	Name   string
	Size   int64
	SHA256 []byte
	// Body is the file's bytes, kept in the ledger. Nil when the file is over the
	// size limit: then only the fact of its arrival is recorded, and the bytes stay
	// where they are (the source's failed/ folder, the path given to the CLI).
	Body io.Reader
	// Refusal, when set, records the file QUARANTINED at once, with this code
	// and reason (its source refused it, or it is over the size limit): in the
	// same statement, so no crash can leave it waiting to be applied.
	Refusal *Refusal
	// Listed, when set, is the source file the bytes were fetched from. It is
	// marked RECEIVED with the file in the same transaction: no poll fetches it again.
	Listed *SourceFileKey
	// Then, when set, runs in the same transaction once the file is recorded
	// (a duplicate or a refusal too): the job that applies and answers the file
	// is enqueued in it, so the file and its job commit together or not at all.
	Then func(ctx context.Context, tx pgx.Tx, r Received) error
	// Children, when set, are the data files of an archive that holds several
	// (processors.SplitArchive): each is received as a file of its own, after
	// the archive and in order, linked to it, and the archive itself is
	// COMPLETED as split (kind archive), holding no rows of its own.
	Children []Child
	// Reply is what answering the file needs once no source lists it,
	// recorded with it (and with the files split from it).
	Reply Reply
	// Rerun, when set, makes the file a new run of an earlier one, asked for
	// by someone (rerun.go): it is checked against what was run before, in
	// the transaction that records it, and never taken as a duplicate.
	Rerun *Rerun
	// actor is who asked for the rerun a file of an archive was split from.
	actor string
	// child says the file is one of an archive's: it is never an earlier
	// file picked up again.
	child bool
}

// askedBy is who asked for the file: the rerun's actor, or "" for a file a
// source or the command line's apply brought.
func (p ReceiveParams) askedBy() string {
	if p.Rerun != nil {
		return p.Rerun.Actor
	}
	return p.actor
}

// Child is one data file of an archive, for ReceiveParams.Children.
type Child struct {
	Name   string
	Size   int64
	SHA256 []byte
	Body   io.Reader
}

// Refusal is why a file is quarantined as it is received.
type Refusal struct {
	Code   outcome.QuarantineCode
	Reason string
	// BySource says its source refused it (a mail refused whole): its bytes are
	// what the source refused, never a data file to reprocess.
	BySource bool
}

// SourceFileKey names one listed file of one source.
type SourceFileKey struct {
	Source string
	File   ListedFile
}

// Received is what Receive decided about a file.
type Received struct {
	FileID int64
	// Status is RECEIVED (apply it now), DUPLICATE_FILE (the same bytes were
	// already applied for this brand: DuplicateOf names that file) or
	// QUARANTINED (ReceiveParams.Refusal).
	Status      outcome.FileStatus
	DuplicateOf int64
	// Children are how the data files of a split archive were received.
	Children []Received
}

// Receive records a file and keeps its bytes before anything is applied. The same
// bytes already applied for the brand make a DUPLICATE_FILE record and nothing
// else. A file received before but never finished (a crash, a transient failure)
// is picked up again rather than stored twice when it comes again under its
// name from its source; under another name it is a file of its own.
func (l *Ledger) Receive(ctx context.Context, p ReceiveParams) (Received, error) {
	var r Received
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		brand, err := lockBrandBySlug(ctx, tx, p.Brand)
		if err != nil {
			return err
		}
		if p.Rerun != nil {
			if err := checkRerun(ctx, tx, brand, *p.Rerun); err != nil {
				return err
			}
		}
		if r, err = receive(ctx, tx, brand, p); err != nil {
			return err
		}
		if p.Listed != nil {
			if err := markSourceFileReceived(ctx, tx, *p.Listed, p.SHA256, r.FileID); err != nil {
				return err
			}
		}
		if p.Rerun != nil {
			if err := auditRerun(ctx, tx, brand, *p.Rerun, r); err != nil {
				return err
			}
		}
		if p.Then != nil {
			return p.Then(ctx, tx, r)
		}
		return nil
	})
	var refused *RefusedError
	if errors.As(err, &refused) {
		return Received{}, err
	}
	if err != nil {
		return Received{}, fmt.Errorf("ledger: receive %s: %w", storedName(p.Name), err)
	}
	return r, nil
}

func receive(ctx context.Context, tx pgx.Tx, brand int64, p ReceiveParams) (Received, error) {
	var r Received
	if p.Refusal != nil {
		id, err := insertFile(ctx, tx, brand, p, fileRow{status: outcome.Quarantined, bytesKept: p.Body != nil,
			code: p.Refusal.Code, reason: safetext.Printable(p.Refusal.Reason), sourceRefused: p.Refusal.BySource})
		if err != nil {
			return r, err
		}
		r = Received{FileID: id, Status: outcome.Quarantined}
		if p.Body == nil {
			return r, nil
		}
		return r, storeChunks(ctx, tx, r.FileID, p.Body)
	}
	if len(p.Children) > 0 {
		return receiveArchive(ctx, tx, brand, p)
	}
	// A rerun was checked against the files of the same bytes (checkRerun), and
	// a retry's bytes may well be an earlier retry's: it is never a duplicate.
	// The same bytes under the same name from the same source, received but not
	// finished, are that file again (a crash before it was applied). Under
	// another name they are a file of their own, to be answered under its
	// name: its apply finds the first applied (endIfApplied).
	if p.Body != nil && p.Rerun == nil {
		var id int64
		var status string
		err := tx.QueryRow(ctx, `
			SELECT id, status FROM received_files
			WHERE brand_id = $1 AND sha256 = $2 AND bytes_kept AND retry_of IS NULL
				AND (status = 'COMPLETED' OR status = 'RECEIVED' AND name = $3 AND source = $4
					AND parent_id IS NULL AND reprocess_of IS NULL AND NOT $5)
			ORDER BY status = 'COMPLETED' DESC, id LIMIT 1`,
			brand, p.SHA256, storedName(p.Name), p.Source, p.child).Scan(&id, &status)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return r, interpretError(err)
		case status == string(outcome.Received):
			return Received{FileID: id, Status: outcome.Received}, nil
		default:
			r = Received{Status: outcome.DuplicateFile, DuplicateOf: id}
			r.FileID, err = insertFile(ctx, tx, brand, p, duplicateRow(id))
			return r, err
		}
	}
	id, err := insertFile(ctx, tx, brand, p, fileRow{status: outcome.Received, bytesKept: p.Body != nil})
	if err != nil {
		return r, err
	}
	r = Received{FileID: id, Status: outcome.Received}
	if p.Body == nil {
		return r, nil
	}
	return r, storeChunks(ctx, tx, r.FileID, p.Body)
}

// fileRow is what a new received_files row says besides ReceiveParams.
type fileRow struct {
	status        outcome.FileStatus
	bytesKept     bool
	kind          string
	duplicateOf   int64
	code          outcome.QuarantineCode
	reason        string
	sourceRefused bool
	split         bool // an archive COMPLETED as split: no rows of its own
}

// duplicateRow is the row of a file whose bytes were applied as file of.
func duplicateRow(of int64) fileRow {
	return fileRow{status: outcome.DuplicateFile, duplicateOf: of,
		reason: fmt.Sprintf("the same bytes were applied as file %d", of)}
}

// insertFile records one received file: p's name, size, hash, reply, the
// rerun it is and who asked for it, and r's status and the rest.
func insertFile(ctx context.Context, tx pgx.Tx, brand int64, p ReceiveParams, r fileRow) (int64, error) {
	var reprocessOf, retryOf int64
	kind := r.kind
	if p.Rerun != nil {
		if p.Rerun.Retry {
			// Its kind is its original's, whatever detection would say of a few rows.
			retryOf, kind = p.Rerun.Of, cmp.Or(kind, p.Rerun.Kind)
		} else {
			reprocessOf = p.Rerun.Of
		}
	}
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept, kind,
			duplicate_of, reason_code, reason, finished_at,
			rows_total, rows_applied, rows_rejected, rows_duplicate,
			reprocess_of, retry_of, actor, reply, source_refused)
		VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8::text, ''),
			nullif($9::bigint, 0), nullif($10::text, ''), nullif($11::text, ''), CASE WHEN $6 <> 'RECEIVED' THEN now() END,
			CASE WHEN $12 THEN 0 END, CASE WHEN $12 THEN 0 END, CASE WHEN $12 THEN 0 END, CASE WHEN $12 THEN 0 END,
			nullif($13::bigint, 0), nullif($14::bigint, 0), nullif($15::text, ''), $16, $17)
		RETURNING id`,
		brand, p.Source, storedName(p.Name), p.Size, p.SHA256, string(r.status), r.bytesKept, kind,
		r.duplicateOf, string(r.code), r.reason, r.split,
		reprocessOf, retryOf, safetext.Printable(p.askedBy()), p.Reply.stored(), r.sourceRefused).Scan(&id)
	return id, interpretError(err)
}

// receiveArchive records an archive split into its files: itself (its bytes
// kept), COMPLETED as split unless the same bytes were applied before, then
// each child as a file received from the same source, linked to it, with the
// archive's reply (the brand sent the archive) and who asked for it when the
// archive is a rerun.
func receiveArchive(ctx context.Context, tx pgx.Tx, brand int64, p ReceiveParams) (Received, error) {
	var r Received
	var earlier int64
	err := tx.QueryRow(ctx, `
		SELECT id FROM received_files WHERE brand_id = $1 AND sha256 = $2 AND status = 'COMPLETED' AND retry_of IS NULL`,
		brand, p.SHA256).Scan(&earlier)
	switch {
	case err == nil:
		r = Received{Status: outcome.DuplicateFile, DuplicateOf: earlier}
		r.FileID, err = insertFile(ctx, tx, brand, p, duplicateRow(earlier))
		return r, err
	case !errors.Is(err, pgx.ErrNoRows):
		return r, interpretError(err)
	}
	id, err := insertFile(ctx, tx, brand, p, fileRow{status: outcome.Completed, bytesKept: true, kind: KindArchive, split: true})
	if err != nil {
		return r, err
	}
	r = Received{FileID: id, Status: outcome.Completed}
	if err := storeChunks(ctx, tx, r.FileID, p.Body); err != nil {
		return r, err
	}
	for _, c := range p.Children {
		child, err := receive(ctx, tx, brand, ReceiveParams{Brand: p.Brand, Source: p.Source, Name: c.Name,
			Size: c.Size, SHA256: c.SHA256, Body: c.Body, Reply: p.Reply, actor: p.askedBy(), child: true})
		if err != nil {
			return r, err
		}
		if _, err := tx.Exec(ctx, "UPDATE received_files SET parent_id = $2 WHERE id = $1", child.FileID, r.FileID); err != nil {
			return r, interpretError(err)
		}
		r.Children = append(r.Children, child)
	}
	return r, nil
}

func storeChunks(ctx context.Context, tx pgx.Tx, fileID int64, body io.Reader) error {
	buf := make([]byte, chunkSize)
	seq := 0
	var readErr error
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"received_file_chunks"}, []string{"file_id", "seq", "data"},
		pgx.CopyFromFunc(func() ([]any, error) {
			n, err := io.ReadFull(body, buf)
			if n == 0 {
				if err != io.EOF {
					readErr = err
				}
				return nil, readErr
			}
			if err != nil && err != io.ErrUnexpectedEOF {
				readErr = err
				return nil, err
			}
			seq++
			return []any{fileID, seq, buf[:n]}, nil
		}))
	if readErr != nil {
		return fmt.Errorf("read file: %w", readErr)
	}
	return interpretError(err)
}

// Quarantine ends a received file as not processable, with a code and a reason
// that ops and the brand can act on. Its bytes stay kept. The reason is stored
// as printable text whatever it quotes: a quarantine that failed on a stray byte
// would leave the file to be retried forever. It reports false, changing
// nothing, when the file was finished already (by another replica).
func (l *Ledger) Quarantine(ctx context.Context, fileID int64, code outcome.QuarantineCode, reason string) (bool, error) {
	reason = safetext.Printable(reason)
	tag, err := l.pool.Exec(ctx, `
		UPDATE received_files SET status = 'QUARANTINED', reason_code = $2, reason = $3, finished_at = now()
		WHERE id = $1 AND status = 'RECEIVED'`, fileID, string(code), reason)
	if err != nil {
		return false, fmt.Errorf("ledger: quarantine file %d: %w", fileID, interpretError(err))
	}
	return tag.RowsAffected() == 1, nil
}

// FileBytes writes the original bytes of a received file to w.
func (l *Ledger) FileBytes(ctx context.Context, fileID int64, w io.Writer) error {
	rows, err := l.pool.Query(ctx, "SELECT data FROM received_file_chunks WHERE file_id = $1 ORDER BY seq", fileID)
	if err != nil {
		return interpretError(err)
	}
	defer rows.Close()
	var chunk []byte
	for rows.Next() {
		if err := rows.Scan(&chunk); err != nil {
			return err
		}
		if _, err := io.Copy(w, bytes.NewReader(chunk)); err != nil {
			return err
		}
	}
	return interpretError(rows.Err())
}

// AppliedFile returns the id of the file with these bytes already applied for the
// brand, or 0. A dry run uses it to say DUPLICATE_FILE as the real apply would.
func (l *Ledger) AppliedFile(ctx context.Context, brand string, sha256 []byte) (int64, error) {
	id, err := brandID(ctx, l.pool, brand)
	if err != nil {
		return 0, err
	}
	var file int64
	err = l.pool.QueryRow(ctx, `
		SELECT id FROM received_files WHERE brand_id = $1 AND sha256 = $2 AND status = 'COMPLETED' AND retry_of IS NULL`,
		id, sha256).Scan(&file)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return file, interpretError(err)
}

// ReceivedFile is what the ledger keeps about a received file.
type ReceivedFile struct {
	ID          int64
	Brand       string // the brand's slug
	Source      string // the source's name, or "cli"
	Name        string
	Size        int64
	SHA256      []byte // empty for a file over the size limit, which was not read
	Status      outcome.FileStatus
	DuplicateOf int64                  // for DUPLICATE_FILE
	Code        outcome.QuarantineCode // for QUARANTINED
	Reason      string                 // for QUARANTINED and DUPLICATE_FILE
	BytesKept   bool
	ReceivedAt  time.Time
	FinishedAt  time.Time // zero while RECEIVED
	Kind        string    // once applied: action-updates, ...; archive for an archive split into its files
	Parent      int64     // the archive a file was split from; 0 for most
	// The counts of its rows' outcomes, once COMPLETED.
	Rows, Applied, Rejected, Duplicate int
	// ReprocessOf is the quarantined file this one runs again; RetryOf the
	// completed file whose rejected rows it holds (rerun.go). 0 for most.
	ReprocessOf, RetryOf int64
	// Actor is who asked for this run ("cli:alice", "web:bob"): set for a
	// rerun and the files split from one, "" for a file a source or the
	// command line's apply brought.
	Actor string
	// Reply is what answering the file needs; zero for a file received
	// before it was recorded (and for the command line's).
	Reply Reply
	// SourceRefused: quarantined by its source as it was received (a mail
	// refused whole).
	SourceRefused bool
	// AnsweredAt is when its result or receipt reached the brand (or there
	// was none to send); zero: not yet, or not recorded.
	AnsweredAt time.Time
}

// KindArchive is the kind of an archive split into its files (ReceiveParams.Children).
const KindArchive = "archive"

const receivedFileColumns = `f.id, b.slug, f.source, f.name, f.size, f.sha256, f.status, coalesce(f.duplicate_of, 0),
	coalesce(f.reason_code, ''), coalesce(f.reason, ''), f.bytes_kept, f.received_at, f.finished_at, coalesce(f.kind, ''),
	coalesce(f.parent_id, 0), coalesce(f.rows_total, 0), coalesce(f.rows_applied, 0), coalesce(f.rows_rejected, 0),
	coalesce(f.rows_duplicate, 0), coalesce(f.reprocess_of, 0), coalesce(f.retry_of, 0), coalesce(f.actor, ''),
	f.reply, f.source_refused, f.answered_at`

func scanReceivedFile(row pgx.Row) (ReceivedFile, error) {
	var f ReceivedFile
	var finished, answered *time.Time
	var reply []byte
	err := row.Scan(&f.ID, &f.Brand, &f.Source, &f.Name, &f.Size, &f.SHA256, &f.Status, &f.DuplicateOf, &f.Code, &f.Reason,
		&f.BytesKept, &f.ReceivedAt, &finished, &f.Kind, &f.Parent, &f.Rows, &f.Applied, &f.Rejected, &f.Duplicate,
		&f.ReprocessOf, &f.RetryOf, &f.Actor, &reply, &f.SourceRefused, &answered)
	if err != nil {
		return f, err
	}
	f.Name = nameOf(f.Name)
	if finished != nil {
		f.FinishedAt = *finished
	}
	if answered != nil {
		f.AnsweredAt = *answered
	}
	f.Reply, err = loadReply(reply)
	return f, err
}

// ErrNoFile is returned for a received file that does not exist.
var ErrNoFile = errors.New("no such received file")

// ReceivedFile reads what the ledger keeps about a received file.
func (l *Ledger) ReceivedFile(ctx context.Context, id int64) (ReceivedFile, error) {
	f, err := scanReceivedFile(l.pool.QueryRow(ctx, `SELECT `+receivedFileColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id WHERE f.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("ledger: file %d: %w", id, ErrNoFile)
	}
	if err != nil {
		return f, fmt.Errorf("ledger: file %d: %w", id, interpretError(err))
	}
	return f, nil
}

// ReceivedFiles returns what the ledger keeps about the files received after
// the file afterID (0: from the first), oldest first, at most limit of them
// (1 to 1000): a page of every brand's files, for a report or a listing.
func (l *Ledger) ReceivedFiles(ctx context.Context, afterID int64, limit int) ([]ReceivedFile, error) {
	limit = min(max(limit, 1), 1000)
	rows, err := l.pool.Query(ctx, `SELECT `+receivedFileColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE f.id > $1 ORDER BY f.id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: files received after %d: %w", afterID, interpretError(err))
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReceivedFile, error) { return scanReceivedFile(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: files received after %d: %w", afterID, interpretError(err))
	}
	return files, nil
}

// WaitingFiles returns the files of upTo's brand that sources delivered and
// that wait to be applied, up to upTo itself, oldest first: files of a brand
// are applied in the order they arrived, whichever job gets to them first.
// Files given to the command line are its own to apply; reruns of them
// (rerun.go) wait their turn like any.
func (l *Ledger) WaitingFiles(ctx context.Context, upTo int64) ([]ReceivedFile, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+receivedFileColumns+`
		FROM received_files u
		JOIN received_files f ON f.brand_id = u.brand_id AND f.status = 'RECEIVED' AND f.id <= u.id
		JOIN brands b ON b.id = f.brand_id
		WHERE u.id = $1 AND f.bytes_kept AND (f.source <> 'cli' OR f.reprocess_of IS NOT NULL OR f.retry_of IS NOT NULL)
		ORDER BY f.id`, upTo)
	if err != nil {
		return nil, fmt.Errorf("ledger: files waiting before %d: %w", upTo, interpretError(err))
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReceivedFile, error) { return scanReceivedFile(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: files waiting before %d: %w", upTo, interpretError(err))
	}
	return files, nil
}

// ChildFiles returns the files an archive was split into, in its order.
func (l *Ledger) ChildFiles(ctx context.Context, archive int64) ([]ReceivedFile, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+receivedFileColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE f.parent_id = $1 ORDER BY f.id`, archive)
	if err != nil {
		return nil, fmt.Errorf("ledger: files of archive %d: %w", archive, interpretError(err))
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReceivedFile, error) { return scanReceivedFile(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: files of archive %d: %w", archive, interpretError(err))
	}
	return files, nil
}
