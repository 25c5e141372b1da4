package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AuditTrail returns the newest entries of the audit log, newest first, at
// most limit (1 to 1000).
func (l *Ledger) AuditTrail(ctx context.Context, limit int) ([]AuditEntry, error) {
	limit = min(max(limit, 1), 1000)
	rows, err := l.pool.Query(ctx, `SELECT a.id, a.at, a.actor, a.action, coalesce(b.slug, ''), coalesce(a.file_id, 0), a.detail
		FROM audit_log a LEFT JOIN brands b ON b.id = a.brand_id ORDER BY a.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: audit trail: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var detail []byte
		if err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Brand, &e.FileID, &detail); err != nil {
			return e, err
		}
		return e, json.Unmarshal(detail, &e.Detail)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: audit trail: %w", interpretError(err))
	}
	return out, nil
}
