package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/safetext"
)

// Actions of the audit log that the ledger records itself. The web pages add
// their own ("web.sign_in", ...): the action is free text, by convention
// "<area>.<verb>".
const (
	AuditReprocess     = "files.reprocess"
	AuditRetryRejected = "files.retry_rejected"
)

// AuditEntry is one line of the audit log: who did what, to which brand and
// file. The log is append-only.
type AuditEntry struct {
	ID     int64
	At     time.Time // set by the database
	Actor  string    // "cli:alice", "web:bob"
	Action string
	Brand  string // the brand's slug; "" when the action is about no brand
	FileID int64  // 0 when it is about no file
	// Detail is the rest, as JSON: {"new_file_id": 14, "rows": 3}.
	Detail map[string]any
}

// Audit appends an entry to the audit log.
func (l *Ledger) Audit(ctx context.Context, e AuditEntry) error {
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var brand int64
		if e.Brand != "" {
			var err error
			if brand, err = brandID(ctx, tx, e.Brand); err != nil {
				return err
			}
		}
		return insertAudit(ctx, tx, brand, e)
	})
	if err != nil {
		return fmt.Errorf("ledger: audit %s: %w", e.Action, err)
	}
	return nil
}

func insertAudit(ctx context.Context, tx pgx.Tx, brand int64, e AuditEntry) error {
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit detail: %w", err)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO audit_log (actor, action, brand_id, file_id, detail)
		VALUES ($1, $2, nullif($3::bigint, 0), nullif($4::bigint, 0), $5)`,
		safetext.Printable(e.Actor), e.Action, brand, e.FileID, b)
	return interpretError(err)
}

// FileAudit returns the audit log's entries about a file, oldest first.
func (l *Ledger) FileAudit(ctx context.Context, fileID int64) ([]AuditEntry, error) {
	rows, err := l.pool.Query(ctx, `
		SELECT a.id, a.at, a.actor, a.action, coalesce(b.slug, ''), coalesce(a.file_id, 0), a.detail
		FROM audit_log a LEFT JOIN brands b ON b.id = a.brand_id
		WHERE a.file_id = $1 ORDER BY a.id`, fileID)
	if err != nil {
		return nil, fmt.Errorf("ledger: audit of file %d: %w", fileID, interpretError(err))
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var detail []byte
		if err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Brand, &e.FileID, &detail); err != nil {
			return e, err
		}
		return e, json.Unmarshal(detail, &e.Detail)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: audit of file %d: %w", fileID, interpretError(err))
	}
	return entries, nil
}
