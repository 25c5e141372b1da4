package report

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
)

// busyDay is the day the benchmark reports on: the last of 44 days of a busy
// platform, each with 1,000 files (950 completed with 5,264 rows each: 5,000,800
// rows a day), 200,000 locks and payouts, and a thousand inquiries resolved.
var busyDay = Date{2026, 11, 23}

// loadBusyLedger fills a migrated, empty ledger with the busy platform, by
// SQL of its own (applying 220,000,000 rows through the apply would take a
// week): 50 brands, 44,000 files with their tallies, the report day's
// 4,501,100 file events, hourly lifecycle runs' tallies (200,000 locks and
// payouts a day), 200,000 actions of which 5,000 wait for funds, 100,000
// inquiries of which 10,000 are open, and 20 sources of which 2 fail. It
// takes a minute.
func loadBusyLedger(tb testing.TB, l *ledger.Ledger) {
	tb.Helper()
	ctx := context.Background()
	for _, step := range []struct{ what, sql string }{
		{"brands", `
			INSERT INTO brands (slug, name, currency, timezone, locking_days, payout_delay_days, balance)
			SELECT 'brand' || g, 'Brand ' || g, CASE WHEN g % 3 = 0 THEN 'EUR' ELSE 'USD' END, 'UTC', 30, 15,
				CASE WHEN g % 10 = 0 THEN -1000 ELSE 50000 END
			FROM generate_series(1, 50) g`},
		{"trackers", `INSERT INTO trackers (brand_id, id, name, kind, payout_percent) SELECT id, 1, 'Sale', 'SALE', 8.5 FROM brands`},
		{"partners", `INSERT INTO partners (id) SELECT generate_series(1, 1000)`},
		{"actions", `
			INSERT INTO actions (id, brand_id, partner_id, tracker_id, oid, event_date, currency, state, amount, payout,
				original_amount, original_payout, payout_delayed)
			SELECT g, b.id, 1 + g % 1000, 1, 'O-' || g, '2026-10-01'::timestamptz + (g % 50) * interval '1 day',
				b.currency, CASE WHEN g % 40 = 0 THEN 'PAID' ELSE 'PENDING' END, 100, 8.5, 100, 8.5,
				g % 40 = 0 AND b.balance < 0
			FROM generate_series(1, 200000) g JOIN brands b ON b.slug = 'brand' || (1 + g % 50)`},
		{"files", `
			INSERT INTO received_files (brand_id, source, name, kind, size, sha256, status, reason_code, reason, bytes_kept,
				received_at, finished_at, rows_total, rows_applied, rows_rejected, rows_duplicate, duplicate_of)
			SELECT b.id, 'source' || (g % 20), 'returns_' || g || '.csv', 'action-updates', 500000, decode(md5(g::text), 'hex'),
				s.status, CASE WHEN s.status = 'QUARANTINED' THEN 'MISSING_COLUMN' END,
				CASE WHEN s.status = 'QUARANTINED' THEN 'the file has no Reason column' END, true, t.at, t.at + interval '20 seconds',
				CASE WHEN s.status = 'COMPLETED' THEN 5264 END, CASE WHEN s.status = 'COMPLETED' THEN 4738 END,
				CASE WHEN s.status = 'COMPLETED' THEN 473 END, CASE WHEN s.status = 'COMPLETED' THEN 53 END,
				CASE WHEN s.status = 'DUPLICATE_FILE' THEN 1 END
			FROM generate_series(0, 43999) g
			JOIN brands b ON b.slug = 'brand' || (1 + g % 50)
			CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 < 95 THEN 'COMPLETED' WHEN g % 100 < 98 THEN 'QUARANTINED'
				ELSE 'DUPLICATE_FILE' END AS status) s
			CROSS JOIN LATERAL (SELECT '2026-10-11'::timestamptz + (g / 1000) * interval '1 day'
				+ (g % 1000) * interval '86 seconds' AS at) t
			ORDER BY g`},
		{"tallies", `
			INSERT INTO file_tallies (file_id, outcome, code, operation, rows, sale_amount_change, payout_change)
			SELECT f.id, v.outcome, v.code, v.op, v.n, v.sale, v.payout
			FROM received_files f CROSS JOIN (VALUES
				('APPLIED', '', 'MODIFY', 2000, -20000.00, -1700.00),
				('APPLIED', '', 'REVERSE', 2000, -200000.00, -17000.00),
				('APPLIED', '', 'APPROVE', 738, 0.00, 0.00),
				('REJECTED', 'ACTION_NOT_FOUND', 'REVERSE', 400, 0.00, 0.00),
				('REJECTED', 'ACTION_LOCKED', 'MODIFY', 73, 0.00, 0.00),
				('DUPLICATE_ROW', 'DUPLICATE_OPERATION', 'MODIFY', 53, 0.00, 0.00)
			) v (outcome, code, op, n, sale, payout)
			WHERE f.status = 'COMPLETED'`},
		// The report never reads a file's events; they are here so that the
		// table and its indexes are as large as on such a day.
		{"the day's file events", `
			INSERT INTO ledger_events (at, brand_id, action_id, kind, actor, file_id, line, old_state, new_state,
				old_amount, new_amount, old_payout, new_payout)
			SELECT f.received_at, f.brand_id, 1 + (f.id * 4738 + l) % 200000, 'REVERSE', 'source:x', f.id, l, 'PENDING', 'REVERSED',
				100, 0, 8.5, 0
			FROM received_files f CROSS JOIN generate_series(2, 4739) l
			WHERE f.status = 'COMPLETED' AND f.received_at >= '2026-11-23' AND f.received_at < '2026-11-24'`},
		// The lifecycle runs hourly and locks and pays 100,000 actions a day
		// each; the report reads the tallies it writes with its events.
		{"lifecycle runs", `
			INSERT INTO event_tallies (at, brand_id, kind, events, balance_delta)
			SELECT '2026-10-11 00:05Z'::timestamptz + h * interval '1 hour', b.id, k.kind, 83,
				CASE k.kind WHEN 'PAY' THEN -705.50 ELSE 0 END
			FROM generate_series(0, 44 * 24 - 1) h CROSS JOIN brands b CROSS JOIN (VALUES ('LOCK'), ('PAY')) k (kind)`},
		{"inquiries", `
			INSERT INTO inquiries (brand_id, inquiry_id, partner_id, oid, type, tracker_id, transaction_date, submitted_at,
				file_id, line, status, resolution_reason, resolved_at, resolved_by)
			SELECT b.id, 'INQ-' || g, 1 + g % 1000, 'ORD-' || g, 'UNTRACKED', 1,
				'2026-08-20'::timestamptz + (g % 90) * interval '1 day', '2026-08-25'::timestamptz + (g % 90) * interval '1 day',
				1, g, s.status, CASE WHEN s.status = 'DECLINED' THEN 'Transaction cannot be traced' END,
				CASE WHEN s.status <> 'NEW' THEN '2026-08-26'::timestamptz + (g % 90) * interval '1 day' END,
				CASE WHEN s.status <> 'NEW' THEN 'source:x' END
			FROM generate_series(1, 100000) g JOIN brands b ON b.slug = 'brand' || (1 + g % 50)
			CROSS JOIN LATERAL (SELECT CASE WHEN g % 10 = 0 THEN 'NEW' ELSE 'DECLINED' END AS status) s`},
		{"sources", `
			INSERT INTO source_health (source, failures, last_error, failing_since, last_failure_at, next_attempt_at, last_success_at)
			SELECT 'source' || g, CASE WHEN g < 2 THEN 40 ELSE 0 END, CASE WHEN g < 2 THEN 'dial tcp: i/o timeout' END,
				CASE WHEN g < 2 THEN '2026-11-23 03:00Z'::timestamptz END, CASE WHEN g < 2 THEN '2026-11-23 23:00Z'::timestamptz END,
				CASE WHEN g < 2 THEN '2026-11-24 00:30Z'::timestamptz END, '2026-11-23 02:00Z'::timestamptz
			FROM generate_series(0, 19) g`},
		{"vacuum", `VACUUM ANALYZE`},
	} {
		began := time.Now()
		if _, err := l.Pool().Exec(ctx, step.sql); err != nil {
			tb.Fatalf("load %s: %v", step.what, err)
		}
		tb.Logf("loaded %s in %s", step.what, time.Since(began).Round(time.Millisecond))
	}
}

// benchLog writes log lines to the benchmark's log.
type benchLog struct{ b *testing.B }

func (w benchLog) Write(p []byte) (int, error) {
	w.b.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// BenchmarkBuildABusyDay builds and renders the report of a day of 1,000 files
// and 5,000,000 rows, of every brand, the way the daily mail and the ops day
// view do: go test ./report -run '^$' -bench BuildABusyDay -benchtime 20x
func BenchmarkBuildABusyDay(b *testing.B) {
	ctx := context.Background()
	l, err := ledger.Open(ctx, pgtest.NewDatabase(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	if err := l.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	loadBusyLedger(b, l)
	now := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	build := func(b *testing.B, brand string) {
		for b.Loop() {
			r, err := Build(ctx, l, Params{Day: busyDay, Brand: brand, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			if r.Totals.Rows.Total < 5_000_000 && brand == "" {
				b.Fatalf("%d rows in the day", r.Totals.Rows.Total)
			}
			if err := WriteHTML(io.Discard, r, HTMLOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if testing.Verbose() {
		// The time of each read, once, in the benchmark's log.
		logged, err := ledger.Open(ctx, l.Pool().Config().ConnString(), slog.New(slog.NewTextHandler(benchLog{b}, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Build(ctx, logged, Params{Day: busyDay, Now: now}); err != nil {
			b.Fatal(err)
		}
		logged.Close()
	}
	b.Run("EveryBrand", func(b *testing.B) { build(b, "") })
	b.Run("OneBrand", func(b *testing.B) { build(b, "brand7") })
	b.Run("ReadOnly", func(b *testing.B) {
		for b.Loop() {
			if _, err := Build(ctx, l, Params{Day: busyDay, Now: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
	r, err := Build(ctx, l, Params{Day: busyDay, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"RenderHTML", func(w io.Writer) error { return WriteHTML(w, r, HTMLOptions{}) }},
		{"RenderCSV", func(w io.Writer) error { return WriteCSV(w, r) }},
		{"RenderJSON", func(w io.Writer) error { return WriteJSON(w, r) }},
	} {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				if err := f.write(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
