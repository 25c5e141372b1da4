package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/outcome"
)

// The reads of the ops pages (web/). Each takes the Scope of the user who
// asks and sees nothing outside it: an object of another brand is reported
// as not existing (ErrNoFile), so an id tried by hand tells nothing.

// FileListing is a received file as the ops pages list and show it.
type FileListing struct {
	ReceivedFile
	BrandName  string
	FinishedAt time.Time // zero while RECEIVED
	// Counts stored when the file completed; Counted is false before.
	Counted                            bool
	Rows, Applied, Rejected, Duplicate int
	Children                           int // files an archive was split into
}

const fileListingColumns = receivedFileColumns + `, b.name, coalesce(f.finished_at, '0001-01-01Z'),
	f.rows_total IS NOT NULL, coalesce(f.rows_total, 0), coalesce(f.rows_applied, 0),
	coalesce(f.rows_rejected, 0), coalesce(f.rows_duplicate, 0)`

func scanFileListing(row pgx.Row) (FileListing, error) {
	var f FileListing
	var err error
	f.ReceivedFile, err = scanReceivedFile(withExtra{row, []any{&f.BrandName, &f.FinishedAt, &f.Counted,
		&f.Rows, &f.Applied, &f.Rejected, &f.Duplicate}})
	return f, err
}

// withExtra scans a row of receivedFileColumns followed by more columns:
// scanReceivedFile fills the first, extra the rest.
type withExtra struct {
	row   pgx.Row
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }

// FilesParams select the files of a time range, for the day view.
type FilesParams struct {
	Scope    Scope
	Brand    string // a slug; empty: every brand in scope
	From, To time.Time
	// AfterID pages on: the files after this one, in id order. 0: the first page.
	AfterID int64
	Limit   int // 1 to 5000; default 1000
}

// FilesReceived lists the files received in [From, To) in id order, at most
// Limit of them after AfterID.
func (l *Ledger) FilesReceived(ctx context.Context, p FilesParams) ([]FileListing, error) {
	all, brands := p.Scope.args()
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, 5000)
	rows, err := l.pool.Query(ctx, `SELECT `+fileListingColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE `+scopeSQL("f.brand_id", 1)+` AND ($3 = '' OR b.slug = $3)
			AND f.received_at >= $4 AND f.received_at < $5 AND f.id > $6
		ORDER BY f.id LIMIT $7`, all, brands, p.Brand, p.From, p.To, p.AfterID, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: files received: %w", interpretError(err))
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FileListing, error) { return scanFileListing(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: files received: %w", interpretError(err))
	}
	return files, nil
}

// BrandFiles lists a brand's newest files, newest first: those before the
// file BeforeID (0: the newest), at most limit (1 to 500).
func (l *Ledger) BrandFiles(ctx context.Context, scope Scope, brand string, beforeID int64, limit int) ([]FileListing, error) {
	all, brands := scope.args()
	limit = min(max(limit, 1), 500)
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	rows, err := l.pool.Query(ctx, `SELECT `+fileListingColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE `+scopeSQL("f.brand_id", 1)+` AND b.slug = $3 AND f.id < $4
		ORDER BY f.id DESC LIMIT $5`, all, brands, brand, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: files of %s: %w", brand, interpretError(err))
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FileListing, error) { return scanFileListing(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: files of %s: %w", brand, interpretError(err))
	}
	return files, nil
}

// FileInScope reads one file if the scope sees its brand; ErrNoFile otherwise,
// exactly as for a file that does not exist.
func (l *Ledger) FileInScope(ctx context.Context, scope Scope, id int64) (FileListing, error) {
	all, brands := scope.args()
	f, err := scanFileListing(l.pool.QueryRow(ctx, `SELECT `+fileListingColumns+`
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE f.id = $3 AND `+scopeSQL("f.brand_id", 1), all, brands, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("ledger: file %d: %w", id, ErrNoFile)
	}
	if err != nil {
		return f, fmt.Errorf("ledger: file %d: %w", id, interpretError(err))
	}
	if f.Kind == KindArchive {
		err = l.pool.QueryRow(ctx, `SELECT count(*) FROM received_files WHERE parent_id = $1`, id).Scan(&f.Children)
		if err != nil {
			return f, fmt.Errorf("ledger: file %d: %w", id, interpretError(err))
		}
	}
	return f, nil
}

// RowOutcome is one row's outcome as the file view shows it. Amounts are the
// ledger's decimals as text; empty when the row changed none.
type RowOutcome struct {
	Line                                       int
	Outcome                                    outcome.Outcome
	Code                                       outcome.Code
	Message                                    string
	ActionID                                   int64
	Operation                                  string
	OldAmount, NewAmount, OldPayout, NewPayout string
}

// RowsParams select one page of a file's row outcomes. Pages are keyed by
// line (keyset): After gives the page after that line, Before the page before
// it; neither, the first page. Any page costs the same whatever the file's
// size: no OFFSET, no count.
type RowsParams struct {
	Scope   Scope
	FileID  int64
	Outcome outcome.Outcome // empty: every outcome
	Code    outcome.Code    // empty: every code
	After   int
	Before  int
	Limit   int // 1 to 1000; default 100
}

// RowsPage is a page of row outcomes in line order, and whether there are
// rows (under the same filters) before and after it.
type RowsPage struct {
	Rows             []RowOutcome
	HasPrev, HasNext bool
}

// FileRows reads one page of a file's row outcomes. A file outside the scope
// has no rows.
//
// It reads row_outcomes' two sides itself, each in line order from its
// (file_id, line) index and cut at the page's size, and merges the two short
// lists: through the view, PostgreSQL sorts the file's events from the key to
// the end (it does not merge the union's sides under a LIMIT), which made
// page 1 of a million-row file cost half a second.
func (l *Ledger) FileRows(ctx context.Context, p RowsParams) (RowsPage, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	all, brands := p.Scope.args()
	order, cmp, key := "ASC", ">", p.After
	if p.Before > 0 {
		order, cmp, key = "DESC", "<", p.Before
	}
	inScope := `EXISTS (SELECT 1 FROM received_files f WHERE f.id = $3 AND ` + scopeSQL("f.brand_id", 1) + `)`
	// Applied rows that changed an action are its events: they have no code.
	events := `(SELECT line, 'APPLIED'::text AS outcome, ''::text AS code, ''::text AS message, action_id,
			kind AS operation, coalesce(old_amount::text, '') AS old_amount, coalesce(new_amount::text, '') AS new_amount,
			coalesce(old_payout::text, '') AS old_payout, coalesce(new_payout::text, '') AS new_payout
		FROM ledger_events WHERE file_id = $3 AND line ` + cmp + ` $4 AND ` + inScope + `
		ORDER BY line ` + order + ` LIMIT $5)`
	// Every other outcome is a file_rows entry.
	others := `(SELECT line, outcome, coalesce(code, ''), coalesce(message, ''), coalesce(action_id, 0),
			coalesce(operation, ''), '', '', '', ''
		FROM file_rows WHERE file_id = $3 AND line ` + cmp + ` $4 AND ` + inScope + `
			AND ($6 = '' OR outcome = $6) AND ($7 = '' OR code = $7)
		ORDER BY line ` + order + ` LIMIT $5)`
	query := others
	if (p.Outcome == "" || p.Outcome == outcome.Applied) && p.Code == "" {
		query = events + " UNION ALL " + others
	}
	query = `SELECT * FROM (` + query + `) page ORDER BY line ` + order + ` LIMIT $5`
	// One more than the page says whether another follows in that direction.
	rows, err := l.pool.Query(ctx, query, all, brands, p.FileID, key, limit+1, string(p.Outcome), string(p.Code))
	if err != nil {
		return RowsPage{}, fmt.Errorf("ledger: rows of file %d: %w", p.FileID, interpretError(err))
	}
	var page RowsPage
	page.Rows, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RowOutcome, error) {
		var o RowOutcome
		var out, code string
		err := r.Scan(&o.Line, &out, &code, &o.Message, &o.ActionID, &o.Operation,
			&o.OldAmount, &o.NewAmount, &o.OldPayout, &o.NewPayout)
		o.Outcome, o.Code = outcome.Outcome(out), outcome.Code(code)
		return o, err
	})
	if err != nil {
		return RowsPage{}, fmt.Errorf("ledger: rows of file %d: %w", p.FileID, interpretError(err))
	}
	more := len(page.Rows) > limit
	if more {
		page.Rows = page.Rows[:limit]
	}
	if p.Before > 0 {
		for i, j := 0, len(page.Rows)-1; i < j; i, j = i+1, j-1 {
			page.Rows[i], page.Rows[j] = page.Rows[j], page.Rows[i]
		}
		page.HasPrev, page.HasNext = more, true
	} else {
		page.HasPrev, page.HasNext = p.After > 0, more
	}
	return page, nil
}

// BrandListing is a brand as the ops pages show it.
type BrandListing struct {
	ID            int64
	Slug          string
	Name          string
	Currency      string
	Timezone      string
	Balance       string
	DelayedCount  int
	DelayedAmount string
	OpenInquiries int
}

// Brands lists the brands in scope by slug, with their balance, delayed
// payouts and open inquiries.
func (l *Ledger) Brands(ctx context.Context, scope Scope) ([]BrandListing, error) {
	all, brands := scope.args()
	rows, err := l.pool.Query(ctx, `
		SELECT b.id, b.slug, b.name, b.currency, b.timezone, b.balance::text,
			(SELECT count(*) FROM actions a WHERE a.brand_id = b.id AND a.payout_delayed),
			(SELECT coalesce(sum(a.payout), 0)::text FROM actions a WHERE a.brand_id = b.id AND a.payout_delayed),
			(SELECT count(*) FROM inquiries q WHERE q.brand_id = b.id AND q.status IN ('NEW', 'INCOMPLETE'))
		FROM brands b WHERE `+scopeSQL("b.id", 1)+` ORDER BY b.slug`, all, brands)
	if err != nil {
		return nil, fmt.Errorf("ledger: brands: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BrandListing, error) {
		var b BrandListing
		err := r.Scan(&b.ID, &b.Slug, &b.Name, &b.Currency, &b.Timezone, &b.Balance, &b.DelayedCount,
			&b.DelayedAmount, &b.OpenInquiries)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: brands: %w", interpretError(err))
	}
	return out, nil
}

// InquiryListing is an inquiry as the inquiries view shows it.
type InquiryListing struct {
	ID               int64 // the ledger's, for paging
	Brand            string
	InquiryID        string
	PartnerID        int64
	Oid              string
	Type             string
	TransactionDate  time.Time
	SaleAmount       string
	SubmittedAt      time.Time
	Status           string
	ResolutionReason string
	ActionID         int64
	ResolvedAt       time.Time // zero while open
	ResolvedBy       string
	ResolvedFileID   int64
}

// InquiriesParams select a page of inquiries, newest first.
type InquiriesParams struct {
	Scope    Scope
	Brand    string // a slug; empty: every brand in scope
	Status   string // NEW, INCOMPLETE, VALID, DECLINED, or OPEN (NEW and INCOMPLETE); empty: all
	BeforeID int64  // the page after (older than) this inquiry; 0: the newest
	Limit    int    // 1 to 500; default 100
}

// InquiriesPage lists a page of the inquiries in scope, newest first.
func (l *Ledger) InquiriesPage(ctx context.Context, p InquiriesParams) ([]InquiryListing, error) {
	all, brands := p.Scope.args()
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	before := p.BeforeID
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := l.pool.Query(ctx, `
		SELECT q.id, b.slug, q.inquiry_id, q.partner_id, q.oid, q.type, q.transaction_date,
			coalesce(q.sale_amount::text, ''), q.submitted_at, q.status, coalesce(q.resolution_reason, ''),
			coalesce(q.action_id, 0), coalesce(q.resolved_at, '0001-01-01Z'), coalesce(q.resolved_by, ''),
			coalesce(q.resolved_file_id, 0)
		FROM inquiries q JOIN brands b ON b.id = q.brand_id
		WHERE `+scopeSQL("q.brand_id", 1)+` AND ($3 = '' OR b.slug = $3)
			AND ($4 = '' OR q.status = $4 OR ($4 = 'OPEN' AND q.status IN ('NEW', 'INCOMPLETE')))
			AND q.id < $5
		ORDER BY q.id DESC LIMIT $6`, all, brands, p.Brand, p.Status, before, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: inquiries: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InquiryListing, error) {
		var q InquiryListing
		err := r.Scan(&q.ID, &q.Brand, &q.InquiryID, &q.PartnerID, &q.Oid, &q.Type, &q.TransactionDate,
			&q.SaleAmount, &q.SubmittedAt, &q.Status, &q.ResolutionReason, &q.ActionID, &q.ResolvedAt,
			&q.ResolvedBy, &q.ResolvedFileID)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: inquiries: %w", interpretError(err))
	}
	return out, nil
}
