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
}

// Received is what Receive decided about a file.
type Received struct {
	FileID int64
	// Status is RECEIVED (apply it now) or DUPLICATE_FILE (the same bytes were
	// already applied for this brand: DuplicateOf names that file).
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
				return interpretError(err)
			case status == string(outcome.Received):
				r = Received{FileID: id, Status: outcome.Received}
				return nil
			default:
				r = Received{Status: outcome.DuplicateFile, DuplicateOf: id}
				return tx.QueryRow(ctx, `
					INSERT INTO received_files (brand_id, source, name, size, sha256, status, duplicate_of,
						bytes_kept, finished_at, reason)
					VALUES ($1, $2, $3, $4, $5, 'DUPLICATE_FILE', $6, false, now(),
						'the same bytes were applied as file ' || $6::bigint)
					RETURNING id`, brand, p.Source, p.Name, p.Size, p.SHA256, id).Scan(&r.FileID)
			}
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept)
			VALUES ($1, $2, $3, $4, $5, 'RECEIVED', $6) RETURNING id`,
			brand, p.Source, p.Name, p.Size, p.SHA256, p.Body != nil).Scan(&r.FileID)
		if err != nil {
			return interpretError(err)
		}
		r.Status = outcome.Received
		if p.Body == nil {
			return nil
		}
		return storeChunks(ctx, tx, r.FileID, p.Body)
	})
	if err != nil {
		return Received{}, fmt.Errorf("ledger: receive %s: %w", p.Name, err)
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
// would leave the file to be retried forever.
func (l *Ledger) Quarantine(ctx context.Context, fileID int64, code outcome.QuarantineCode, reason string) error {
	reason = safetext.Printable(reason)
	_, err := l.pool.Exec(ctx, `
		UPDATE received_files SET status = 'QUARANTINED', reason_code = $2, reason = $3, finished_at = now()
		WHERE id = $1 AND status = 'RECEIVED'`, fileID, string(code), reason)
	if err != nil {
		return fmt.Errorf("ledger: quarantine file %d: %w", fileID, interpretError(err))
	}
	return nil
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
