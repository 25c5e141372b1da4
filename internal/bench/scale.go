package main

// ---- The cost of a file follows the file (issue 13) --------------------------
//
// benchScale applies one update file of nRows rows to a ledger of nRows
// actions and to one of nLarge actions, in paired runs: the time on the large
// ledger must be within 1.2x of the time on the small one. Both ledgers hold the
// same nRows actions, imported from the same tracking export with the real
// binary, and the file names each of them once (and rejects some rows, as the
// 1M-row file does), so every row resolves alike in both. In the large ledger
// they are its newest actions (ids nLarge-nRows+1 to nLarge, the export
// imported last), after nLarge-nRows older actions of the same brand generated
// with INSERT ... SELECT generate_series as imports of 100,000-action exports
// would have left them (fillLedger): a brand's daily file is about recent
// actions, and the older ones are what the ledger grew by.
//
// benchSmall applies a file of nRows rows to copies of the 1M-action ledger of
// the 1M-row phase against the floor: a small file's fixed cost must stay within
// 1.5x of the floor.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

func benchScale(ctx context.Context, e *env, nLarge, nRows, runs int) error {
	if nLarge < nRows {
		return fmt.Errorf("scale: -scale-actions %d is under -scale-rows %d", nLarge, nRows)
	}
	fmt.Printf("scale: one %d-row file on a %d-action and on a %d-action ledger (load average %s)\n",
		nRows, nRows, nLarge, loadAverage())
	first := nLarge - nRows + 1
	actionsFile := filepath.Join(e.dir, "scale-actions.csv")
	updatesFile := filepath.Join(e.dir, "scale-updates.csv")
	if err := writeActions(actionsFile, first, nRows); err != nil {
		return err
	}
	if err := writeUpdates(updatesFile, first, nRows, nRows); err != nil {
		return err
	}
	small, large := "scalesmall", "scalelarge"
	for _, db := range []string{small, large} {
		if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return err
		}
		url := e.url(db)
		if _, _, err := returnsd(ctx, e.bin, url, "migrate"); err != nil {
			return err
		}
		if db == large {
			start := time.Now()
			// Any command syncs the config's brands into the ledger.
			if _, _, err := returnsd(ctx, e.bin, url, "export", "balances"); err != nil {
				return err
			}
			if err := fillLedger(ctx, url, first-1); err != nil {
				return err
			}
			fmt.Printf("scale: generated %d older actions with their CREATE events (INSERT ... SELECT generate_series) in %s\n",
				first-1, time.Since(start).Round(time.Millisecond))
		}
		took, _, err := returnsd(ctx, e.bin, url, "import", "actions", "--brand", "acme",
			"--result", filepath.Join(e.dir, "import-result.csv"), actionsFile)
		if err != nil {
			return err
		}
		fmt.Printf("scale: imported the file's %d actions into the %s ledger in %s\n", nRows, db, took.Round(time.Millisecond))
		start := time.Now()
		if err := vacuum(ctx, url); err != nil {
			return err
		}
		want := nRows
		if db == large {
			want = nLarge
		}
		actions, size, err := ledgerSize(ctx, url)
		if err != nil {
			return err
		}
		if actions != want {
			return fmt.Errorf("scale: the %s ledger holds %d actions, want %d", db, actions, want)
		}
		fmt.Printf("scale: VACUUM ANALYZE of the %s ledger (%d actions, %d MB) in %s\n",
			db, actions, size>>20, time.Since(start).Round(time.Millisecond))
	}

	var largeOut string
	apply := func(out *string) func(ctx context.Context, url string) (time.Duration, error) {
		return func(ctx context.Context, url string) (time.Duration, error) {
			took, _, o, err := run(ctx, e.bin, url, "apply", "--config", e.cfg, "--brand", "acme",
				"--result", filepath.Join(e.dir, "result.csv"), updatesFile)
			if out != nil && *out == "" {
				*out = o
			}
			return took, err
		}
	}
	same := func(ctx context.Context, a, b string) error {
		if err := sameActions(ctx, a, b, int64(first), int64(nLarge)); err != nil {
			return err
		}
		return sameOutcomes(ctx, a, b)
	}
	onSmall, onLarge, err := pairedRuns(ctx, e, runs,
		side{name: "scalesmallcopy", template: small, run: apply(nil)},
		side{name: "scalelargecopy", template: large, run: apply(&largeOut)}, same)
	if err != nil {
		return err
	}
	for _, db := range []string{small, large} {
		if err := e.dropDB(ctx, db); err != nil {
			return err
		}
	}
	fmt.Printf("apply steps on the %d-action ledger (returnsd's debug log, first run):\n", nLarge)
	printSteps(largeOut)
	for i := range onSmall {
		fmt.Printf("scale: run %d: %d actions %.2f s, %d actions %.2f s (%.2fx)\n", i+1,
			nRows, onSmall[i].Seconds(), nLarge, onLarge[i].Seconds(), onLarge[i].Seconds()/onSmall[i].Seconds())
	}
	s, l := median(onSmall), median(onLarge)
	ratio := l.Seconds() / s.Seconds()
	fmt.Printf("scale: %d-row file on %d actions: %.2f s; on %d actions: %.2f s; %s\n",
		nRows, nRows, s.Seconds(), nLarge, l.Seconds(), runsNote(runs, "paired runs"))
	fmt.Printf("scale: %d actions / %d actions: %.2fx (target <= 1.2x)\n", nLarge, nRows, ratio)
	if ratio > 1.2 {
		fmt.Println("bench: a target was missed")
	}
	return nil
}

func benchSmall(ctx context.Context, e *env, base string, nActions, nRows, runs int) error {
	fmt.Printf("small file: %d rows on %d actions (load average %s)\n", nRows, nActions, loadAverage())
	updatesFile := filepath.Join(e.dir, "small-updates.csv")
	if err := writeUpdates(updatesFile, 1, nActions, nRows); err != nil {
		return err
	}
	r, err := applyAndFloor(ctx, e, base, updatesFile, runs)
	if err != nil {
		return err
	}
	took, fl := median(r.apply), median(r.floor)
	ratio := took.Seconds() / fl.Seconds()
	fmt.Printf("small file: apply, runs: %s; floor: %s\n", secs(r.apply), secs(r.floor))
	fmt.Printf("small file: apply %.2f s, floor %.2f s, %s\n", took.Seconds(), fl.Seconds(), runsNote(runs, "paired runs"))
	fmt.Printf("small file: apply / floor: %.2fx (target <= 1.5x)\n", ratio)
	if ratio > 1.5 {
		fmt.Println("bench: a target was missed")
	}
	return nil
}

// fillLedger adds n actions of acme with ids 1 to n to the ledger at url, as
// importing exports of 100,000 actions each would have: a COMPLETED received
// file per export with its tallies, each action with its CREATE event at its
// line of the file, payouts from the trackers' rules, lock and payout dates
// from the contract. Their events span the two years before the file's
// actions (Oct 2024 to Sep 2026), a few thousand a day, the newest with the
// highest ids; trackers, partners and locked actions are spread as in
// writeActions.
func fillLedger(ctx context.Context, url string, n int) error {
	const perFile = 100_000
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// The foreign keys' triggers would check each of millions of rows one by
	// one (most of the time generating takes); they are off while generating,
	// and the keys are checked once, set-based, after.
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		return err
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO partners (id) SELECT g FROM generate_series(1000, 5999) g ON CONFLICT DO NOTHING`, []any{}},
		{`INSERT INTO received_files (brand_id, source, name, kind, size, sha256, status, bytes_kept,
			received_at, finished_at, rows_total, rows_applied, rows_rejected, rows_duplicate)
		SELECT b.id, 'cli', 'actions-' || f || '.csv', 'actions', x.rows * 70, sha256(('bench filler ' || f)::bytea),
			'COMPLETED', false, x.at, x.at, x.rows, x.rows, 0, 0
		FROM brands b
		CROSS JOIN generate_series(1, ($1::int + $2 - 1) / $2) f
		CROSS JOIN LATERAL (SELECT least($2, $1 - (f - 1) * $2) AS rows,
			timestamptz '2024-10-01 04:00Z' + least(f * $2, $1) * interval '12 seconds' + interval '1 day' AS at) x
		WHERE b.slug = 'acme'`, []any{n, perFile}},
		{`INSERT INTO actions (id, brand_id, partner_id, tracker_id, oid, event_date, currency, state,
			amount, payout, original_amount, original_payout, lock_date, payout_date)
		SELECT g, b.id, 1000 + (g::bigint * 7919) % 5000, t.id, 'ORD-' || g, x.ev, b.currency, x.state,
			x.amount, p.payout, x.amount, p.payout,
			((x.ev AT TIME ZONE b.timezone) + make_interval(days => b.locking_days)) AT TIME ZONE b.timezone,
			((x.ev AT TIME ZONE b.timezone) + make_interval(days => b.locking_days + b.payout_delay_days)) AT TIME ZONE b.timezone
		FROM brands b
		CROSS JOIN generate_series(1, $1::int) g
		CROSS JOIN LATERAL (SELECT timestamptz '2024-10-01 04:00Z' + g * interval '12 seconds' AS ev,
			(5 + (g * 31) % 500 + (g % 97) / 100.0)::numeric(14, 2) AS amount,
			CASE WHEN (g * 37) % 100 < 3 THEN 1003 WHEN (g * 37) % 100 < 10 THEN 1002 ELSE 1001 END AS tracker,
			CASE WHEN (g * 53) % 100 < 2 THEN 'LOCKED' ELSE 'PENDING' END AS state) x
		JOIN trackers t ON t.brand_id = b.id AND t.id = x.tracker
		CROSS JOIN LATERAL (SELECT coalesce(round(x.amount * t.payout_percent / 100, 2), t.payout_fixed) AS payout) p
		WHERE b.slug = 'acme'`, []any{n}},
		{`INSERT INTO ledger_events (at, brand_id, action_id, kind, actor, file_id, line, new_state, new_amount, new_payout)
		SELECT f.received_at, a.brand_id, a.id, 'CREATE', 'cli:bench', f.id, (a.id - 1) % $2 + 2, a.state, a.amount, a.payout
		FROM actions a
		JOIN received_files f ON f.source = 'cli' AND f.kind = 'actions' AND f.name = 'actions-' || ((a.id - 1) / $2 + 1) || '.csv'
		WHERE a.id <= $1`, []any{n, perFile}},
		{`INSERT INTO file_tallies (file_id, outcome, code, operation, rows, sale_amount_change, payout_change)
		SELECT file_id, 'APPLIED', '', 'CREATE', count(*), sum(new_amount), sum(new_payout)
		FROM ledger_events WHERE kind = 'CREATE' AND action_id <= $1
		GROUP BY file_id`, []any{n}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("generate older actions: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, "RESET session_replication_role"); err != nil {
		return err
	}
	var dangling int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM actions a
		WHERE NOT EXISTS (SELECT FROM partners p WHERE p.id = a.partner_id)
		OR NOT EXISTS (SELECT FROM trackers t WHERE t.brand_id = a.brand_id AND t.id = a.tracker_id)`).Scan(&dangling)
	if err != nil {
		return err
	}
	if dangling > 0 {
		return fmt.Errorf("generate older actions: %d actions with no partner or tracker", dangling)
	}
	return nil
}

// ledgerSize counts the actions of the ledger at url and sizes its database in bytes.
func ledgerSize(ctx context.Context, url string) (actions int, bytes int64, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM actions), pg_database_size(current_database())").Scan(&actions, &bytes)
	return actions, bytes, err
}

// sameOutcomes checks that the update file had the same outcomes in the
// ledgers at a and b.
func sameOutcomes(ctx context.Context, a, b string) error {
	counts := func(url string) (string, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		var s string
		err = conn.QueryRow(ctx, `SELECT string_agg(concat_ws(' ', status, rows_total, rows_applied, rows_rejected, rows_duplicate), ', ')
			FROM received_files WHERE kind = 'action-updates'`).Scan(&s)
		return s, err
	}
	x, err := counts(a)
	if err != nil {
		return err
	}
	y, err := counts(b)
	if err != nil {
		return err
	}
	if x != y {
		return fmt.Errorf("the file's outcomes differ between the two ledgers (%s vs %s)", x, y)
	}
	return nil
}
