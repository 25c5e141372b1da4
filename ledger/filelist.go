package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/outcome"
)

// FileQuery picks received files for a listing. Zero fields pick all.
type FileQuery struct {
	Brand  string             // a brand's slug
	Status outcome.FileStatus // RECEIVED, COMPLETED, DUPLICATE_FILE or QUARANTINED
	Since  time.Time          // received at or after
	Before int64              // only files older than this one (the next page)
	Limit  int                // 1 to 1000; default 50
}

// ListFiles returns the received files q picks, newest first.
func (l *Ledger) ListFiles(ctx context.Context, q FileQuery) ([]ReceivedFile, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	var since *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	rows, err := l.pool.Query(ctx, `SELECT `+receivedFileColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE ($1 = '' OR b.slug = $1) AND ($2 = '' OR f.status = $2)
			AND ($3::timestamptz IS NULL OR f.received_at >= $3) AND ($4 = 0 OR f.id < $4)
		ORDER BY f.id DESC LIMIT $5`, q.Brand, string(q.Status), since, q.Before, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: list files: %w", interpretError(err))
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReceivedFile, error) { return scanReceivedFile(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: list files: %w", interpretError(err))
	}
	return files, nil
}
