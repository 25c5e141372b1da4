package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// The daily report's reads (SPEC §7). They are built to stay fast on a large
// ledger whatever a day holds: a day's files are found by time
// (received_files_by_time) and their rows are read from their tallies, a few
// rows per file written when the file completed, never from the day's
// millions of outcomes; the events that belong to no file (locks, payouts,
// deposits) likewise from their tallies, a few rows per lifecycle run.
// Everything is read in one read-only snapshot, so the numbers of one report
// agree with each other.

// tallyFile writes the file's tallies (file_tallies) from its outcomes, in the
// transaction that completes it, and checks they count every row of the file.
func tallyFile(ctx context.Context, tx pgx.Tx, file int64, rows int) error {
	var tallied int
	err := tx.QueryRow(ctx, `
		WITH t AS (
			INSERT INTO file_tallies (file_id, outcome, code, operation, rows, sale_amount_change, payout_change)
			SELECT $1, outcome, coalesce(code, ''), coalesce(operation, ''), count(*),
				coalesce(sum(new_amount - coalesce(old_amount, 0)), 0), coalesce(sum(new_payout - coalesce(old_payout, 0)), 0)
			FROM row_outcomes WHERE file_id = $1
			GROUP BY 2, 3, 4
			RETURNING rows
		)
		SELECT coalesce(sum(rows), 0) FROM t`, file).Scan(&tallied)
	if err != nil {
		return fmt.Errorf("tally file %d: %w", file, interpretError(err))
	}
	if tallied != rows {
		return fmt.Errorf("file %d: %d rows counted but %d outcomes stored", file, rows, tallied)
	}
	return nil
}

// tallyEvents records in event_tallies the n events of one kind a brand's
// transaction just wrote that belong to no file, with the sum of their
// balance_delta.
func tallyEvents(ctx context.Context, tx pgx.Tx, brand int64, kind string, n int, delta money.Amount) error {
	if n == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, "INSERT INTO event_tallies (brand_id, kind, events, balance_delta) VALUES ($1, $2, $3, $4::numeric)",
		brand, kind, n, delta.String())
	if err != nil {
		return fmt.Errorf("tally %s events: %w", kind, interpretError(err))
	}
	return nil
}

// Span is a stretch of time, From included and To not.
type Span struct{ From, To time.Time }

// ActivityParams says what Activity reads.
type ActivityParams struct {
	Day   Span   // the report's day
	Brand string // a brand's slug; "" for every brand
	// Now is the clock for what is read as it stands now: the age of open
	// inquiries. Balances and failing sources are read as they stand too.
	Now time.Time
	// OpenAgeDays are the bounds, in days and ascending, of the age groups of
	// open inquiries: {7, 30} counts those younger than 7 days, from 7 to 30
	// days, and 30 days or older.
	OpenAgeDays []int
	// Trend are the days of the trend, oldest first.
	Trend []Span
}

// Activity is what the ledger holds about a day, for the daily report. Every
// list is by brand slug where it has one, so the report assembles it per brand.
type Activity struct {
	Brands            []BrandStanding     // every brand (or the one asked for), by slug
	Files             []DayFile           // files received in the day, by id
	Tallies           []Tally             // rows of the day's completed files
	Events            []EventCount        // the day's events that belong to no file
	InquiriesResolved []InquiryResolution // inquiries resolved in the day
	OpenInquiries     []OpenInquiries     // open inquiries now, by brand
	Sources           []FailingSource     // sources failing now or that failed in the day, by name
	Trend             []TrendCount        // one per ActivityParams.Trend span
}

// BrandStanding is a brand and its funds as they stand.
type BrandStanding struct {
	Brand, Name, Currency string
	Balance               money.Amount // negative while payouts are delayed
	DelayedPayouts        int          // payouts booked but not covered by the funds
	DelayedAmount         money.Amount
}

// DayFile is one file received in the day. An archive split into its files is
// not one: its files are, each on its own.
type DayFile struct {
	ID          int64
	Brand       string
	Source      string // the source's name, or "cli"
	Name        string
	Kind        string // action-updates, inquiry-resolutions, actions, inquiries; "" until applied
	Status      outcome.FileStatus
	Code        outcome.QuarantineCode // for QUARANTINED
	Reason      string                 // for QUARANTINED and DUPLICATE_FILE
	ReceivedAt  time.Time
	FinishedAt  time.Time // zero while RECEIVED
	Rows        int       // counted when COMPLETED
	Applied     int
	Rejected    int
	Duplicate   int
	Parent      int64 // the archive it was split from; 0 for most
	DuplicateOf int64 // for DUPLICATE_FILE: the file that applied the same bytes
}

// Tally is how many rows of a brand's files of the day ended with one outcome,
// code and operation, and the sale amount and payout their events changed.
type Tally struct {
	Brand     string
	Outcome   outcome.Outcome
	Code      outcome.Code // "" for none
	Operation string       // MODIFY, REVERSE, APPROVE, RESTORE, RESET, CREATE; VALID, DECLINED, INCOMPLETE; INQUIRY
	Rows      int
	// SaleAmountChange and PayoutChange are the sums of new minus old amount
	// and payout of the rows' events (a created action's old ones count as 0).
	SaleAmountChange money.Amount
	PayoutChange     money.Amount
}

// EventCount counts a brand's events of one kind that belong to no file.
type EventCount struct {
	Brand  string
	Kind   string // LOCK, PAY, PAYOUT_RELEASED, DEPOSIT
	Events int
	// BalanceDelta is their sum of balance_delta: the payouts debited (as a
	// negative amount) for PAY, the funds credited for DEPOSIT, else 0.
	BalanceDelta money.Amount
}

// InquiryResolution counts a brand's inquiries resolved with one status.
type InquiryResolution struct {
	Brand     string
	Status    string // VALID, DECLINED, INCOMPLETE
	Inquiries int
	Auto      int // of them, declined by auto-resolution
}

// OpenInquiries are a brand's open (NEW or INCOMPLETE) inquiries now.
type OpenInquiries struct {
	Brand string
	Open  int
	ByAge []int // len(OpenAgeDays)+1 counts, youngest group first
	// The oldest open inquiry, by submission.
	OldestID          string
	OldestSubmittedAt time.Time
}

// FailingSource is a source whose polls fail, or failed during the day.
type FailingSource struct {
	Source       string
	Failures     int    // consecutive failed polls; 0 once it recovered
	LastError    string // of the last failed poll
	FailingSince time.Time
	LastFailure  time.Time
	NextAttempt  time.Time // backed off until then; zero when healthy
	LastSuccess  time.Time
}

// TrendCount is one day of the trend: the files received that day and what
// their rows came to.
type TrendCount struct {
	Span
	Files, Completed, Duplicate, Quarantined int
	Applied, Rejected, DuplicateRows         int
}

// Activity reads what the daily report shows about a day, in one read-only
// snapshot.
func (l *Ledger) Activity(ctx context.Context, p ActivityParams) (Activity, error) {
	var a Activity
	tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return a, fmt.Errorf("ledger: activity: %w", interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var brand *int64
	if p.Brand != "" {
		id, err := brandID(ctx, tx, p.Brand)
		if err != nil {
			return a, fmt.Errorf("ledger: activity: %w", err)
		}
		brand = &id
	}
	steps := []struct {
		what string
		read func() error
	}{
		{"brands", func() (err error) { a.Brands, err = brandStandings(ctx, tx, brand); return }},
		{"files", func() (err error) { a.Files, err = dayFiles(ctx, tx, p.Day, brand); return }},
		{"rows", func() (err error) { a.Tallies, err = dayTallies(ctx, tx, a.Files); return }},
		{"events", func() (err error) { a.Events, err = dayEvents(ctx, tx, p.Day, brand); return }},
		{"resolved inquiries", func() (err error) { a.InquiriesResolved, err = dayResolutions(ctx, tx, p.Day, brand); return }},
		{"open inquiries", func() (err error) { a.OpenInquiries, err = openInquiries(ctx, tx, p.Now, p.OpenAgeDays, brand); return }},
		{"sources", func() (err error) { a.Sources, err = failingSources(ctx, tx, p.Day); return }},
		{"trend", func() (err error) { a.Trend, err = trend(ctx, tx, p.Trend, brand); return }},
	}
	began := time.Now()
	took := make([]any, 0, 2*len(steps)+2)
	for _, s := range steps {
		step := time.Now()
		if err := s.read(); err != nil {
			return Activity{}, fmt.Errorf("ledger: activity: %s: %w", s.what, err)
		}
		took = append(took, s.what, time.Since(step))
	}
	l.logger.DebugContext(ctx, "report activity read", append(took, "took", time.Since(began))...)
	return a, nil
}

func brandStandings(ctx context.Context, tx pgx.Tx, brand *int64) ([]BrandStanding, error) {
	rows, err := tx.Query(ctx, `
		SELECT b.slug, b.name, b.currency, b.balance::text, count(a.id), coalesce(sum(a.payout), 0)::text
		FROM brands b
		LEFT JOIN actions a ON a.brand_id = b.id AND a.payout_delayed
		WHERE $1::bigint IS NULL OR b.id = $1
		GROUP BY b.id ORDER BY b.slug`, brand)
	if err != nil {
		return nil, interpretError(err)
	}
	return collect(rows, func(r pgx.CollectableRow) (BrandStanding, error) {
		var b BrandStanding
		var balance, delayed string
		if err := r.Scan(&b.Brand, &b.Name, &b.Currency, &balance, &b.DelayedPayouts, &delayed); err != nil {
			return b, err
		}
		var err error
		if b.Balance, err = parseTotal(balance); err != nil {
			return b, err
		}
		b.DelayedAmount, err = parseTotal(delayed)
		return b, err
	})
}

func dayFiles(ctx context.Context, tx pgx.Tx, day Span, brand *int64) ([]DayFile, error) {
	rows, err := tx.Query(ctx, `
		SELECT f.id, b.slug, f.source, f.name, coalesce(f.kind, ''), f.status, coalesce(f.reason_code, ''),
			coalesce(f.reason, ''), f.received_at, f.finished_at, coalesce(f.rows_total, 0), coalesce(f.rows_applied, 0),
			coalesce(f.rows_rejected, 0), coalesce(f.rows_duplicate, 0), coalesce(f.parent_id, 0), coalesce(f.duplicate_of, 0)
		FROM received_files f JOIN brands b ON b.id = f.brand_id
		WHERE f.received_at >= $1 AND f.received_at < $2 AND ($3::bigint IS NULL OR f.brand_id = $3)
			AND f.kind IS DISTINCT FROM 'archive'
		ORDER BY f.id`, day.From, day.To, brand)
	if err != nil {
		return nil, interpretError(err)
	}
	return collect(rows, func(r pgx.CollectableRow) (DayFile, error) {
		var f DayFile
		var finished *time.Time
		err := r.Scan(&f.ID, &f.Brand, &f.Source, &f.Name, &f.Kind, &f.Status, &f.Code, &f.Reason, &f.ReceivedAt,
			&finished, &f.Rows, &f.Applied, &f.Rejected, &f.Duplicate, &f.Parent, &f.DuplicateOf)
		if finished != nil {
			f.FinishedAt = *finished
		}
		f.Name = nameOf(f.Name)
		return f, err
	})
}

// dayTallies sums the tallies of the day's completed files, found by their
// ids: one probe of file_tallies' key per file, however many days the table
// holds. They are summed by brand here, from the files' own list, rather
// than joined back to received_files and sorted by the database. A file
// completed before the tallies existed has none: its outcomes are summed
// instead, the same way tallyFile does.
func dayTallies(ctx context.Context, tx pgx.Tx, files []DayFile) ([]Tally, error) {
	brandOf := map[int64]string{}
	var ids []int64
	for _, f := range files {
		if f.Status == outcome.Completed {
			ids = append(ids, f.ID)
			brandOf[f.ID] = f.Brand
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `
		SELECT id FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT FROM file_tallies t WHERE t.file_id = id)`, ids)
	if err != nil {
		return nil, interpretError(err)
	}
	untallied, err := collect(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `
		SELECT file_id, outcome, code, operation, rows, sale_amount_change::text, payout_change::text
		FROM file_tallies WHERE file_id = ANY ($1)
		UNION ALL
		SELECT file_id, outcome, coalesce(code, ''), coalesce(operation, ''), count(*),
			coalesce(sum(new_amount - coalesce(old_amount, 0)), 0)::text, coalesce(sum(new_payout - coalesce(old_payout, 0)), 0)::text
		FROM row_outcomes WHERE file_id = ANY ($2)
		GROUP BY 1, 2, 3, 4`, ids, untallied)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	type key struct {
		brand     string
		outcome   outcome.Outcome
		code      outcome.Code
		operation string
	}
	sums := map[key]*Tally{}
	for rows.Next() {
		var file int64
		var t Tally
		var sale, payout string
		if err := rows.Scan(&file, &t.Outcome, &t.Code, &t.Operation, &t.Rows, &sale, &payout); err != nil {
			return nil, err
		}
		if t.SaleAmountChange, err = parseTotal(sale); err != nil {
			return nil, err
		}
		if t.PayoutChange, err = parseTotal(payout); err != nil {
			return nil, err
		}
		t.Brand = brandOf[file]
		k := key{t.Brand, t.Outcome, t.Code, t.Operation}
		if sum := sums[k]; sum != nil {
			sum.Rows += t.Rows
			sum.SaleAmountChange += t.SaleAmountChange
			sum.PayoutChange += t.PayoutChange
		} else {
			sums[k] = &t
		}
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err)
	}
	out := make([]Tally, 0, len(sums))
	for _, t := range sums {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Tally) int {
		return cmp.Or(strings.Compare(a.Brand, b.Brand), strings.Compare(string(a.Outcome), string(b.Outcome)),
			strings.Compare(string(a.Code), string(b.Code)), strings.Compare(a.Operation, b.Operation))
	})
	return out, nil
}

func dayEvents(ctx context.Context, tx pgx.Tx, day Span, brand *int64) ([]EventCount, error) {
	rows, err := tx.Query(ctx, `
		SELECT b.slug, e.kind, e.events, e.delta::text
		FROM (
			SELECT brand_id, kind, sum(events) AS events, sum(balance_delta) AS delta
			FROM event_tallies
			WHERE at >= $1 AND at < $2 AND ($3::bigint IS NULL OR brand_id = $3)
			GROUP BY 1, 2
		) e JOIN brands b ON b.id = e.brand_id
		ORDER BY 1, 2`, day.From, day.To, brand)
	if err != nil {
		return nil, interpretError(err)
	}
	return collect(rows, func(r pgx.CollectableRow) (EventCount, error) {
		var e EventCount
		var delta string
		if err := r.Scan(&e.Brand, &e.Kind, &e.Events, &delta); err != nil {
			return e, err
		}
		var err error
		e.BalanceDelta, err = parseTotal(delta)
		return e, err
	})
}

func dayResolutions(ctx context.Context, tx pgx.Tx, day Span, brand *int64) ([]InquiryResolution, error) {
	rows, err := tx.Query(ctx, `
		SELECT b.slug, i.status, count(*), count(*) FILTER (WHERE i.resolved_by = 'auto-resolve')
		FROM inquiries i JOIN brands b ON b.id = i.brand_id
		WHERE i.resolved_at >= $1 AND i.resolved_at < $2 AND ($3::bigint IS NULL OR i.brand_id = $3)
		GROUP BY 1, 2 ORDER BY 1, 2`, day.From, day.To, brand)
	if err != nil {
		return nil, interpretError(err)
	}
	return collect(rows, pgx.RowToStructByPos[InquiryResolution])
}

func openInquiries(ctx context.Context, tx pgx.Tx, now time.Time, ageDays []int, brand *int64) ([]OpenInquiries, error) {
	bounds := make([]float64, len(ageDays))
	for i, d := range ageDays {
		bounds[i] = float64(d)
	}
	rows, err := tx.Query(ctx, `
		SELECT b.slug, g.bucket, g.n
		FROM (
			SELECT brand_id, width_bucket(extract(epoch FROM $1::timestamptz - submitted_at) / 86400, $2::float8[]) AS bucket,
				count(*) AS n
			FROM inquiries
			WHERE status IN ('NEW', 'INCOMPLETE') AND ($3::bigint IS NULL OR brand_id = $3)
			GROUP BY 1, 2
		) g JOIN brands b ON b.id = g.brand_id
		ORDER BY 1, 2`, now, bounds, brand)
	if err != nil {
		return nil, interpretError(err)
	}
	var out []OpenInquiries
	for rows.Next() {
		var slug string
		var bucket, n int
		if err := rows.Scan(&slug, &bucket, &n); err != nil {
			rows.Close()
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Brand != slug {
			out = append(out, OpenInquiries{Brand: slug, ByAge: make([]int, len(ageDays)+1)})
		}
		o := &out[len(out)-1]
		o.Open += n
		// An inquiry submitted after now (a clock set back) counts as the youngest.
		o.ByAge[min(max(bucket, 0), len(ageDays))] += n
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err)
	}
	// The oldest of each brand: one probe of inquiries_open_by_age per brand.
	rows, err = tx.Query(ctx, `
		SELECT b.slug, o.inquiry_id, o.submitted_at
		FROM brands b
		CROSS JOIN LATERAL (
			SELECT inquiry_id, submitted_at FROM inquiries
			WHERE brand_id = b.id AND status IN ('NEW', 'INCOMPLETE')
			ORDER BY submitted_at, id LIMIT 1
		) o
		WHERE $1::bigint IS NULL OR b.id = $1`, brand)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var slug, id string
		var at time.Time
		if err := rows.Scan(&slug, &id, &at); err != nil {
			return nil, err
		}
		for i := range out {
			if out[i].Brand == slug {
				out[i].OldestID, out[i].OldestSubmittedAt = id, at
			}
		}
	}
	return out, interpretError(rows.Err())
}

func failingSources(ctx context.Context, tx pgx.Tx, day Span) ([]FailingSource, error) {
	rows, err := tx.Query(ctx, `
		SELECT source, failures, coalesce(last_error, ''), failing_since, last_failure_at, next_attempt_at, last_success_at
		FROM source_health
		WHERE failures > 0 OR (last_failure_at >= $1 AND last_failure_at < $2)
		ORDER BY source`, day.From, day.To)
	if err != nil {
		return nil, interpretError(err)
	}
	return collect(rows, func(r pgx.CollectableRow) (FailingSource, error) {
		var s FailingSource
		var since, last, next, success *time.Time
		err := r.Scan(&s.Source, &s.Failures, &s.LastError, &since, &last, &next, &success)
		s.FailingSince, s.LastFailure, s.NextAttempt, s.LastSuccess = orZero(since), orZero(last), orZero(next), orZero(success)
		return s, err
	})
}

func trend(ctx context.Context, tx pgx.Tx, days []Span, brand *int64) ([]TrendCount, error) {
	if len(days) == 0 {
		return nil, nil
	}
	from, to := make([]time.Time, len(days)), make([]time.Time, len(days))
	for i, d := range days {
		from[i], to[i] = d.From, d.To
	}
	rows, err := tx.Query(ctx, `
		SELECT d.i, count(f.id), count(f.id) FILTER (WHERE f.status = 'COMPLETED'),
			count(f.id) FILTER (WHERE f.status = 'DUPLICATE_FILE'), count(f.id) FILTER (WHERE f.status = 'QUARANTINED'),
			coalesce(sum(f.rows_applied), 0), coalesce(sum(f.rows_rejected), 0), coalesce(sum(f.rows_duplicate), 0)
		FROM unnest($1::timestamptz[], $2::timestamptz[]) WITH ORDINALITY AS d (s, e, i)
		LEFT JOIN received_files f ON f.received_at >= d.s AND f.received_at < d.e
			AND f.kind IS DISTINCT FROM 'archive' AND ($3::bigint IS NULL OR f.brand_id = $3)
		GROUP BY d.i ORDER BY d.i`, from, to, brand)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]TrendCount, 0, len(days))
	for rows.Next() {
		var i int
		var c TrendCount
		if err := rows.Scan(&i, &c.Files, &c.Completed, &c.Duplicate, &c.Quarantined,
			&c.Applied, &c.Rejected, &c.DuplicateRows); err != nil {
			rows.Close()
			return nil, err
		}
		c.Span = days[i-1]
		out = append(out, c)
	}
	return out, interpretError(rows.Err())
}

func collect[T any](rows pgx.Rows, fn pgx.RowToFunc[T]) ([]T, error) {
	out, err := pgx.CollectRows(rows, fn)
	if err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

func orZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// errTotalRange is a sum that does not fit an Amount.
var errTotalRange = errors.New("out of range")

// parseTotal reads a sum of amounts from the database: signed, exactly two
// decimal places, and unlike a single amount not bounded by money.Max.
func parseTotal(s string) (money.Amount, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(digits, ".")
	if len(frac) > 2 || intPart == "" {
		return 0, fmt.Errorf("ledger: sum %q from the database: %w", s, money.ErrSyntax)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	n, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("ledger: sum %q from the database: %w", s, errTotalRange)
		}
		return 0, fmt.Errorf("ledger: sum %q from the database: %w", s, money.ErrSyntax)
	}
	if neg {
		n = -n
	}
	return money.Amount(n), nil
}
