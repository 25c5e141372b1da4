// Command bench measures returnsd's apply end to end (SPEC issue "ledger core"):
// it loads 1,000,000 actions, builds a 1,000,000-row mixed update file, applies it
// with the real `returnsd apply` binary in a child process, and prints rows/s and
// the child's peak RSS. In the same run it measures the floor: the same state
// change made by one hand-written set-based statement on an identical copy of the
// database. It also times the lifecycle over a million due actions, the automatic
// approval of 100,000 due inquiries (autoapprove.go), fetching 100 MB over SFTP
// against OpenSSH's sftp client (sftp.go), what an idle `returnsd run` with 100
// sources costs (idle.go), and the ops pages' day view and a deep page of a large
// file's rows (web.go). Run it with `make bench`; each phase alone with its
// -*-only flag.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	root "github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/internal/pgtest"
)

func main() {
	actions := flag.Int("actions", 1_000_000, "actions in the ledger")
	rows := flag.Int("rows", 1_000_000, "rows in the update file")
	filesOnly := flag.String("files-only", "", "only write actions.csv and updates.csv into this directory (for profiling)")
	lifecycleOnly := flag.Bool("lifecycle-only", false, "only measure the lifecycle job (over -actions pending actions)")
	autoApproveOnly := flag.Bool("auto-approve-only", false, "only measure the auto-approval of -inquiries due inquiries")
	inquiries := flag.Int("inquiries", 100_000, "due inquiries the auto-approval approves")
	// The phases that stand on their own, in the order a full run makes them.
	phases := []struct {
		only *bool
		run  func(context.Context) error
	}{
		{flag.Bool("sftp-only", false, "only measure fetching 100 MB over SFTP (ingest/sftp against OpenSSH's sftp client)"), benchSFTP},
		{flag.Bool("idle-only", false, "only measure the idle cost of returnsd run with 100 sources over 60 s (idle.go)"), benchIdle},
		{flag.Bool("web-only", false, "only measure the ops pages: the day view of 1,000 files and 5,000,000 rows, page 500 of a 1,000,000-row file"), benchWeb},
	}
	flag.Parse()
	fail := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	for _, p := range phases {
		if *p.only {
			fail(p.run(context.Background()))
			return
		}
	}
	if *filesOnly != "" {
		err := writeActions(filepath.Join(*filesOnly, "actions.csv"), *actions)
		if err == nil {
			err = writeUpdates(filepath.Join(*filesOnly, "updates.csv"), *actions, *rows)
		}
		fail(err)
		return
	}
	fail(bench(context.Background(), *actions, *rows, *inquiries, *lifecycleOnly, *autoApproveOnly))
	if *lifecycleOnly || *autoApproveOnly {
		return
	}
	for _, p := range phases {
		fail(p.run(context.Background()))
	}
}

func bench(ctx context.Context, nActions, nRows, nInquiries int, lifecycleOnly, autoApproveOnly bool) error {
	dir, err := os.MkdirTemp("", "returnsd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "returnsd")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/returnsd").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v: %s", err, out)
	}
	// A server sized like a real one on this machine: the ledger in memory, and
	// checkpoints not forced in the middle of a run by a small WAL budget. The bench
	// vacuums and analyzes before it measures, so autovacuum is off: a background
	// vacuum must not land in one measurement and not the other.
	srv, err := pgtest.Start(ctx, "shared_buffers=2GB", "wal_buffers=64MB", "max_wal_size=16GB",
		"effective_cache_size=12GB", "autovacuum=off")
	if err != nil {
		return err
	}
	defer srv.Stop()
	admin, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if lifecycleOnly {
		return benchLifecycle(ctx, bin, admin, srv.URL, nActions)
	}
	if autoApproveOnly {
		return benchAutoApprove(ctx, bin, dir, admin, srv.URL, nInquiries)
	}
	for _, db := range []string{"bench", "floor"} {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return err
		}
	}
	benchURL := strings.Replace(srv.URL, "/postgres?", "/bench?", 1)
	floorURL := strings.Replace(srv.URL, "/postgres?", "/floor?", 1)

	fmt.Printf("bench: %d actions, %d update rows, on %s\n", nActions, nRows, srv.URL)
	actionsFile := filepath.Join(dir, "actions.csv")
	updatesFile := filepath.Join(dir, "updates.csv")
	if err := writeActions(actionsFile, nActions); err != nil {
		return err
	}
	if err := writeUpdates(updatesFile, nActions, nRows); err != nil {
		return err
	}

	// The same starting ledger in both databases.
	for _, url := range []string{benchURL, floorURL} {
		if _, _, err := returnsd(ctx, bin, url, "migrate"); err != nil {
			return err
		}
		took, _, err := returnsd(ctx, bin, url, "import", "actions", "--brand", "acme", "--result", filepath.Join(dir, "import-result.csv"), actionsFile)
		if err != nil {
			return err
		}
		fmt.Printf("import actions: %d rows in %s (%.0f rows/s)\n", nActions, took.Round(time.Millisecond), float64(nActions)/took.Seconds())
	}
	for _, url := range []string{benchURL, floorURL} {
		if err := vacuum(ctx, url); err != nil {
			return err
		}
	}

	// The example config at debug level, so the apply logs the time of each step.
	cfg := filepath.Join(dir, "debug.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(root.ExampleConfig), "level: info", "level: debug", 1)), 0o600); err != nil {
		return err
	}
	took, rss, out, err := run(ctx, bin, benchURL, "apply", "--config", cfg, "--brand", "acme", "--result", filepath.Join(dir, "result.csv"), updatesFile)
	if err != nil {
		return err
	}
	fmt.Println("apply steps (returnsd's debug log):")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=DEBUG") {
			fmt.Println("   ", line[strings.Index(line, "msg="):])
		}
	}
	rowsPerSec := float64(nRows) / took.Seconds()

	floor, err := measureFloor(ctx, benchURL, floorURL)
	if err != nil {
		return err
	}
	if err := sameActions(ctx, benchURL, floorURL); err != nil {
		return err
	}
	ratio := took.Seconds() / floor.Seconds()
	fmt.Printf("apply end to end: %d rows in %s = %.0f rows/s (target >= 30000)\n", nRows, took.Round(time.Millisecond), rowsPerSec)
	fmt.Printf("peak RSS of returnsd apply: %.1f MB (target < 256)\n", float64(rss)/(1<<20))
	fmt.Printf("floor (one set-based statement, same state change): %s\n", floor.Round(time.Millisecond))
	fmt.Printf("apply / floor: %.2fx (target <= 2x)\n", ratio)
	if rowsPerSec < 30000 || rss >= 256<<20 || ratio > 2 {
		fmt.Println("bench: a target was missed")
	}
	if err := benchLifecycle(ctx, bin, admin, srv.URL, nActions); err != nil {
		return err
	}
	return benchAutoApprove(ctx, bin, dir, admin, srv.URL, nInquiries)
}

// returnsd runs the binary against url and returns its wall time and peak RSS in bytes.
func returnsd(ctx context.Context, bin, url string, args ...string) (time.Duration, int64, error) {
	took, rss, _, err := run(ctx, bin, url, args...)
	return took, rss, err
}

// run runs the binary against url and returns its wall time, peak RSS in bytes and output.
func run(ctx context.Context, bin, url string, args ...string) (time.Duration, int64, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "RETURNSD_CONFIG=")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return 0, 0, "", fmt.Errorf("returnsd %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return took, ru.Maxrss * 1024, out.String(), nil
}

func vacuum(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "VACUUM ANALYZE")
	return err
}

// writeActions writes a tracking export: mostly sales, some leads and clicks, some locked.
func writeActions(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency,Payout,State\n")
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		tracker, state := 1001, "PENDING"
		switch r := rng.IntN(100); {
		case r < 3:
			tracker = 1003
		case r < 10:
			tracker = 1002
		}
		if rng.IntN(100) < 2 {
			state = "LOCKED"
		}
		day := base.Add(time.Duration(rng.IntN(50*24)) * time.Hour)
		fmt.Fprintf(w, "%d,%d,%d,ORD-%d,%s,%d.%02d,USD,,%s\n", i, 1000+rng.IntN(5000), tracker, i,
			day.Format("2006-01-02T15:04:05Z"), 5+rng.IntN(500), rng.IntN(100), state)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// writeUpdates writes a mixed update file: reversals, modifications, approvals,
// references by ActionId and by Oid, RequestIds, and rows that must be rejected.
func writeUpdates(path string, nActions, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("ActionId,Oid,ActionTrackerId,Amount,CurrencyCode,Reason,RequestId,Note\n")
	rng := rand.New(rand.NewPCG(3, 4))
	perm := rng.Perm(nActions)
	for i := 0; i < n; i++ {
		id := perm[i%nActions] + 1
		ref := fmt.Sprintf("%d,,", id)
		if rng.IntN(10) == 0 {
			ref = fmt.Sprintf(",ORD-%d,1001", id) // by Oid; rejected when the action is not a sale
		}
		reqID := ""
		if rng.IntN(5) == 0 {
			reqID = fmt.Sprintf("REQ-%d", i)
		}
		switch r := rng.IntN(100); {
		case r < 40:
			fmt.Fprintf(w, "%s,,USD,RETURNED,%s,customer return\n", ref, reqID)
		case r < 80:
			fmt.Fprintf(w, "%s,%d.%02d,,ORDER_UPDATE,%s,\n", ref, rng.IntN(400), rng.IntN(100), reqID)
		case r < 95:
			fmt.Fprintf(w, "%s,,,APPROVED,%s,\n", ref, reqID)
		case r < 97:
			fmt.Fprintf(w, "%d,,,12.345,,ORDER_UPDATE,,bad amount\n", id)
		case r < 99:
			fmt.Fprintf(w, "%d,,,,,RETURNED,,not in the ledger\n", nActions+id)
		default:
			fmt.Fprintf(w, "%d,,,,,NO_SUCH_REASON,,\n", id)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// measureFloor copies the state changes the apply made (its ledger events) into
// the floor database, untimed, then times one statement that makes the same
// changes to the actions and writes one ledger event per row.
func measureFloor(ctx context.Context, benchURL, floorURL string) (time.Duration, error) {
	src, err := pgx.Connect(ctx, benchURL)
	if err != nil {
		return 0, err
	}
	defer src.Close(ctx)
	dst, err := pgx.Connect(ctx, floorURL)
	if err != nil {
		return 0, err
	}
	defer dst.Close(ctx)
	var file int64
	err = dst.QueryRow(ctx, `INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept)
		SELECT id, 'floor', 'floor', 0, '\x00', 'RECEIVED', false FROM brands WHERE slug = 'acme' RETURNING id`).Scan(&file)
	if err != nil {
		return 0, err
	}
	if _, err := dst.Exec(ctx, `CREATE UNLOGGED TABLE changes (line int, action_id bigint, kind text, reason text,
		new_state text, new_amount numeric(14,2), new_payout numeric(14,2))`); err != nil {
		return 0, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := src.PgConn().CopyTo(ctx, pw, `COPY (SELECT e.line, e.action_id, e.kind, e.reason, e.new_state, e.new_amount, e.new_payout
			FROM ledger_events e JOIN received_files f ON f.id = e.file_id WHERE f.kind = 'action-updates') TO STDOUT`)
		pw.CloseWithError(err)
	}()
	if _, err := dst.PgConn().CopyFrom(ctx, pr, "COPY changes FROM STDIN"); err != nil {
		return 0, err
	}
	if _, err := dst.Exec(ctx, "ANALYZE changes"); err != nil {
		return 0, err
	}
	start := time.Now()
	_, err = dst.Exec(ctx, `
		WITH old AS (
			SELECT c.*, a.brand_id, a.state, a.amount, a.payout FROM changes c JOIN actions a ON a.id = c.action_id
		), upd AS (
			UPDATE actions a SET state = c.new_state, amount = c.new_amount, payout = c.new_payout,
				modification_count = a.modification_count + CASE WHEN c.kind = 'MODIFY' THEN 1 ELSE 0 END,
				reversed_amount = CASE WHEN c.kind = 'REVERSE' THEN a.amount ELSE a.reversed_amount END,
				reversed_payout = CASE WHEN c.kind = 'REVERSE' THEN a.payout ELSE a.reversed_payout END,
				version = a.version + 1, updated_at = now()
			FROM changes c WHERE a.id = c.action_id
		)
		INSERT INTO ledger_events (brand_id, action_id, kind, actor, file_id, line, reason,
			old_state, new_state, old_amount, new_amount, old_payout, new_payout)
		SELECT brand_id, action_id, kind, 'floor', $1, line, reason, state, new_state, amount, new_amount, payout, new_payout
		FROM old`, file)
	return time.Since(start), err
}

// sameActions checks that the floor made exactly the apply's change.
func sameActions(ctx context.Context, a, b string) error {
	sum := func(url string) (string, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		var s string
		err = conn.QueryRow(ctx, `SELECT md5(string_agg(id || state || amount || payout || modification_count, ',' ORDER BY id)) FROM actions`).Scan(&s)
		return s, err
	}
	x, err := sum(a)
	if err != nil {
		return err
	}
	y, err := sum(b)
	if err != nil {
		return err
	}
	if x != y {
		return fmt.Errorf("the floor's actions differ from the apply's (%s vs %s): the comparison is not fair", x, y)
	}
	return nil
}

// ---- Lifecycle phase (issue 3) ----------------------------------------------
//
// benchLifecycle times the lifecycle job (`returnsd lifecycle`) over n PENDING
// actions whose lock and payout dates have both passed: every one of them is
// locked and paid in the run (one update per action, a LOCK and a PAY event
// each), and the brand's funds cover about half of the payouts, so the other half
// are booked as delayed. The actions are generated with INSERT ... SELECT
// generate_series (with their CREATE events), not imported: the import is
// measured above, and this phase measures the lifecycle alone.
func benchLifecycle(ctx context.Context, bin string, admin *pgx.Conn, serverURL string, n int) error {
	if _, err := admin.Exec(ctx, "CREATE DATABASE lifecycle"); err != nil {
		return err
	}
	url := strings.Replace(serverURL, "/postgres?", "/lifecycle?", 1)
	if _, _, err := returnsd(ctx, bin, url, "migrate"); err != nil {
		return err
	}
	// Any command syncs the config's brands into the ledger.
	if _, _, err := returnsd(ctx, bin, url, "export", "balances"); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	start := time.Now()
	// Events from Oct 1 to Nov 20, 2026 in acme's timezone: locked by Dec 20, paid by Jan 4, 2027.
	for _, q := range []string{
		`INSERT INTO partners (id) SELECT g FROM generate_series(1000, 5999) g ON CONFLICT DO NOTHING`,
		`INSERT INTO actions (id, brand_id, partner_id, tracker_id, oid, event_date, currency, state,
			amount, payout, original_amount, original_payout, lock_date, payout_date)
		SELECT g, b.id, 1000 + g % 5000, 1001, 'ORD-' || g, x.ev, 'USD', 'PENDING',
			x.amount, round(x.amount * 0.085, 2), x.amount, round(x.amount * 0.085, 2),
			((x.ev AT TIME ZONE b.timezone) + make_interval(days => b.locking_days)) AT TIME ZONE b.timezone,
			((x.ev AT TIME ZONE b.timezone) + make_interval(days => b.locking_days + b.payout_delay_days)) AT TIME ZONE b.timezone
		FROM brands b
		CROSS JOIN generate_series(1, $1::int) g
		CROSS JOIN LATERAL (SELECT timestamptz '2026-10-01 04:00Z' + (g % 1200) * interval '1 hour' AS ev,
			(5 + g % 500 + (g % 97) / 100.0)::numeric(14, 2) AS amount) x
		WHERE b.slug = 'acme'`,
		`INSERT INTO ledger_events (brand_id, action_id, kind, actor, new_state, new_amount, new_payout)
		SELECT brand_id, id, 'CREATE', 'bench', state, amount, payout FROM actions ORDER BY id`,
	} {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, n)
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("generate pending actions: %w", err)
		}
	}
	var half string
	if err := conn.QueryRow(ctx, "SELECT round(sum(payout) / 2, 2)::text FROM actions").Scan(&half); err != nil {
		return err
	}
	fmt.Printf("lifecycle: generated %d PENDING actions with CREATE events (INSERT ... SELECT generate_series) in %s\n",
		n, time.Since(start).Round(time.Millisecond))
	if _, _, err := returnsd(ctx, bin, url, "funds", "deposit", "--brand", "acme", half); err != nil {
		return err
	}
	if err := vacuum(ctx, url); err != nil {
		return err
	}
	took, _, out, err := run(ctx, bin, url, "lifecycle", "--at", "2027-02-01T00:00:00Z")
	if err != nil {
		return err
	}
	fmt.Print(out)
	var locks, pays, delayed int
	var balanceOK bool
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ledger_events WHERE kind = 'LOCK'),
		(SELECT count(*) FROM ledger_events WHERE kind = 'PAY'),
		(SELECT count(*) FROM actions WHERE payout_delayed),
		(SELECT balance FROM brands WHERE slug = 'acme') = (SELECT sum(balance_delta) FROM ledger_events)`).
		Scan(&locks, &pays, &delayed, &balanceOK)
	if err != nil {
		return err
	}
	if locks != n || pays != n || !balanceOK {
		return fmt.Errorf("lifecycle: %d LOCK and %d PAY events for %d actions, balance matches events: %v", locks, pays, n, balanceOK)
	}
	fmt.Printf("lifecycle over %d pending actions: %.1f s (target < 30 s); all locked and paid, %d payouts delayed\n",
		n, took.Seconds(), delayed)
	if took > 30*time.Second {
		fmt.Println("bench: a target was missed")
	}
	return nil
}
