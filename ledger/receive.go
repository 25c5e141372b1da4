package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

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
}

// Refusal is why a file is quarantined as it is received.
type Refusal struct {
	Code   outcome.QuarantineCode
	Reason string
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
}

// Receive records a file and keeps its bytes before anything is applied. The same
// bytes already applied for the brand make a DUPLICATE_FILE record and nothing
// else. A file received before but never finished (a crash, a transient failure)
// is picked up again rather than stored twice.
func (l *Ledger) Receive(ctx context.Context, p ReceiveParams) (Received, error) {
	var r Received
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		brand, err := lockBrandBySlug(ctx, tx, p.Brand)
		if err != nil {
			return err
		}
		if r, err = receive(ctx, tx, brand, p); err != nil {
			return err
		}
		if p.Listed != nil {
			if err := markSourceFileReceived(ctx, tx, *p.Listed, p.SHA256, r.FileID); err != nil {
				return err
			}
		}
		if p.Then != nil {
			return p.Then(ctx, tx, r)
		}
		return nil
	})
	if err != nil {
		return Received{}, fmt.Errorf("ledger: receive %s: %w", p.Name, err)
	}
	return r, nil
}

func receive(ctx context.Context, tx pgx.Tx, brand int64, p ReceiveParams) (Received, error) {
	var r Received
	if p.Refusal != nil {
		err := tx.QueryRow(ctx, `
			INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept,
				reason_code, reason, finished_at)
			VALUES ($1, $2, $3, $4, $5, 'QUARANTINED', $6, $7, $8, now()) RETURNING id`,
			brand, p.Source, p.Name, p.Size, p.SHA256, p.Body != nil,
			string(p.Refusal.Code), safetext.Printable(p.Refusal.Reason)).Scan(&r.FileID)
		if err != nil {
			return r, interpretError(err)
		}
		r.Status = outcome.Quarantined
		if p.Body == nil {
			return r, nil
		}
		return r, storeChunks(ctx, tx, r.FileID, p.Body)
	}
	if p.Body != nil {
		var id int64
		var status string
		err := tx.QueryRow(ctx, `
			SELECT id, status FROM received_files
			WHERE brand_id = $1 AND sha256 = $2 AND status IN ('COMPLETED', 'RECEIVED') AND bytes_kept
			ORDER BY status = 'COMPLETED' DESC, id LIMIT 1`, brand, p.SHA256).Scan(&id, &status)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return r, interpretError(err)
		case status == string(outcome.Received):
			return Received{FileID: id, Status: outcome.Received}, nil
		default:
			r = Received{Status: outcome.DuplicateFile, DuplicateOf: id}
			err := tx.QueryRow(ctx, `
				INSERT INTO received_files (brand_id, source, name, size, sha256, status, duplicate_of,
					bytes_kept, finished_at, reason)
				VALUES ($1, $2, $3, $4, $5, 'DUPLICATE_FILE', $6, false, now(),
					'the same bytes were applied as file ' || $6::bigint)
				RETURNING id`, brand, p.Source, p.Name, p.Size, p.SHA256, id).Scan(&r.FileID)
			return r, interpretError(err)
		}
	}
	err := tx.QueryRow(ctx, `
		INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept)
		VALUES ($1, $2, $3, $4, $5, 'RECEIVED', $6) RETURNING id`,
		brand, p.Source, p.Name, p.Size, p.SHA256, p.Body != nil).Scan(&r.FileID)
	if err != nil {
		return r, interpretError(err)
	}
	r.Status = outcome.Received
	if p.Body == nil {
		return r, nil
	}
	return r, storeChunks(ctx, tx, r.FileID, p.Body)
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
		SELECT id FROM received_files WHERE brand_id = $1 AND sha256 = $2 AND status = 'COMPLETED'`,
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
	Status      outcome.FileStatus
	DuplicateOf int64                  // for DUPLICATE_FILE
	Code        outcome.QuarantineCode // for QUARANTINED
	Reason      string                 // for QUARANTINED and DUPLICATE_FILE
	BytesKept   bool
}

const receivedFileColumns = `f.id, b.slug, f.source, f.name, f.size, f.status, coalesce(f.duplicate_of, 0),
	coalesce(f.reason_code, ''), coalesce(f.reason, ''), f.bytes_kept`

func scanReceivedFile(row pgx.Row) (ReceivedFile, error) {
	var f ReceivedFile
	err := row.Scan(&f.ID, &f.Brand, &f.Source, &f.Name, &f.Size, &f.Status, &f.DuplicateOf, &f.Code, &f.Reason, &f.BytesKept)
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

// WaitingFiles returns the files of upTo's brand that sources delivered and
// that wait to be applied, up to upTo itself, oldest first: files of a brand
// are applied in the order they arrived, whichever job gets to them first.
// Files given to the command line are its own to apply.
func (l *Ledger) WaitingFiles(ctx context.Context, upTo int64) ([]ReceivedFile, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+receivedFileColumns+`
		FROM received_files u
		JOIN received_files f ON f.brand_id = u.brand_id AND f.status = 'RECEIVED' AND f.id <= u.id
		JOIN brands b ON b.id = f.brand_id
		WHERE u.id = $1 AND f.bytes_kept AND f.source <> 'cli'
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
