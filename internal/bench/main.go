// Command bench measures returnsd's apply end to end (SPEC issue "ledger core"):
// it loads 1,000,000 actions, builds a 1,000,000-row mixed update file, applies it
// with the real `returnsd apply` binary in a child process, and prints rows/s and
// the child's peak RSS. Against it, it measures the floor: the same state change
// made by COPY plus one hand-written set-based statement, on an identical copy of
// the database (paired runs, paired.go). It also measures whether the cost of a
// file follows the file (issue 13, scale.go): a 10,000-row file against the
// floor, and one 100,000-row file on a 100,000-action and on a 5,000,000-action
// ledger. And it times the lifecycle over a million due actions, the automatic
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
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	root "github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/internal/pgtest"
)

func main() {
	var p params
	flag.IntVar(&p.actions, "actions", 1_000_000, "actions in the ledger of the 1M-row phase, the 10k-row phase and the lifecycle")
	flag.IntVar(&p.rows, "rows", 1_000_000, "rows in the update file")
	filesOnly := flag.String("files-only", "", "only write actions.csv and updates.csv into this directory (for profiling)")
	flag.BoolVar(&p.applyOnly, "apply-only", false, "only measure the -rows file on the -actions ledger against the floor")
	flag.BoolVar(&p.lifecycleOnly, "lifecycle-only", false, "only measure the lifecycle job (over -actions pending actions)")
	flag.BoolVar(&p.autoApproveOnly, "auto-approve-only", false, "only measure the auto-approval of -inquiries due inquiries")
	flag.IntVar(&p.inquiries, "inquiries", 100_000, "due inquiries the auto-approval approves")
	flag.BoolVar(&p.scaleOnly, "scale-only", false, "only measure one -scale-rows file on a ledger of as many actions and on one of -scale-actions")
	flag.IntVar(&p.scaleActions, "scale-actions", 5_000_000, "actions in the large ledger of the scale phase")
	flag.IntVar(&p.scaleRows, "scale-rows", 100_000, "rows in the scale phase's update file (and actions in its small ledger)")
	flag.BoolVar(&p.smallOnly, "small-only", false, "only measure a -small-rows file on the -actions ledger against the floor")
	flag.IntVar(&p.smallRows, "small-rows", 10_000, "rows in the small file")
	flag.IntVar(&p.runs, "runs", 3, "paired runs per figure (each figure is their median)")
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
	for _, ph := range phases {
		if *ph.only {
			fail(ph.run(context.Background()))
			return
		}
	}
	if *filesOnly != "" {
		err := writeActions(filepath.Join(*filesOnly, "actions.csv"), 1, p.actions)
		if err == nil {
			err = writeUpdates(filepath.Join(*filesOnly, "updates.csv"), 1, p.actions, p.rows)
		}
		fail(err)
		return
	}
	if p.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	fail(bench(context.Background(), p))
	if p.only() {
		return
	}
	for _, ph := range phases {
		fail(ph.run(context.Background()))
	}
}

// params are the phases to run and their sizes, from the flags.
type params struct {
	actions, rows, inquiries, runs                                  int
	scaleActions, scaleRows, smallRows                              int
	applyOnly, lifecycleOnly, autoApproveOnly, scaleOnly, smallOnly bool
}

// only says whether one phase alone was asked for.
func (p params) only() bool {
	return p.applyOnly || p.lifecycleOnly || p.autoApproveOnly || p.scaleOnly || p.smallOnly
}

func bench(ctx context.Context, p params) error {
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
	// The example config at debug level, so the apply logs the time of each step.
	cfg := filepath.Join(dir, "debug.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(root.ExampleConfig), "level: info", "level: debug", 1)), 0o600); err != nil {
		return err
	}
	e := &env{bin: bin, dir: dir, cfg: cfg, serverURL: srv.URL, admin: admin}
	switch {
	case p.lifecycleOnly:
		return benchLifecycle(ctx, e, p.actions, p.runs)
	case p.autoApproveOnly:
		return benchAutoApprove(ctx, bin, dir, admin, srv.URL, p.inquiries)
	case p.scaleOnly:
		return benchScale(ctx, e, p.scaleActions, p.scaleRows, p.runs)
	case p.applyOnly:
		if err := importBase(ctx, e, "base", p.actions); err != nil {
			return err
		}
		return benchApply(ctx, e, "base", p.actions, p.rows, p.runs)
	case p.smallOnly:
		if err := importBase(ctx, e, "base", p.actions); err != nil {
			return err
		}
		return benchSmall(ctx, e, "base", p.actions, p.smallRows, p.runs)
	}
	if err := importBase(ctx, e, "base", p.actions); err != nil {
		return err
	}
	if err := benchApply(ctx, e, "base", p.actions, p.rows, p.runs); err != nil {
		return err
	}
	if err := benchSmall(ctx, e, "base", p.actions, p.smallRows, p.runs); err != nil {
		return err
	}
	if err := e.dropDB(ctx, "base"); err != nil {
		return err
	}
	if err := benchScale(ctx, e, p.scaleActions, p.scaleRows, p.runs); err != nil {
		return err
	}
	if err := benchLifecycle(ctx, e, p.actions, p.runs); err != nil {
		return err
	}
	return benchAutoApprove(ctx, bin, dir, admin, srv.URL, p.inquiries)
}

// importBase creates the database db holding n actions (ids 1 to n) imported
// with `returnsd import actions`, vacuumed and analyzed: the base the 1M-row and
// the 10k-row phases copy.
func importBase(ctx context.Context, e *env, db string, n int) error {
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return err
	}
	url := e.url(db)
	if _, _, err := returnsd(ctx, e.bin, url, "migrate"); err != nil {
		return err
	}
	actionsFile := filepath.Join(e.dir, "actions.csv")
	if err := writeActions(actionsFile, 1, n); err != nil {
		return err
	}
	took, _, err := returnsd(ctx, e.bin, url, "import", "actions", "--brand", "acme", "--result", filepath.Join(e.dir, "import-result.csv"), actionsFile)
	if err != nil {
		return err
	}
	fmt.Printf("import actions: %d rows in %s (%.0f rows/s)\n", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	return vacuum(ctx, url)
}

// benchApply measures the 1M-row phase: a mixed file of nRows rows applied to
// copies of base (nActions actions) with the real binary in a child process,
// against the floor on copies of the same base. The first run's apply prints
// its steps (returnsd's debug log).
func benchApply(ctx context.Context, e *env, base string, nActions, nRows, runs int) error {
	fmt.Printf("bench: %d actions, %d update rows, on %s (load average %s)\n", nActions, nRows, e.serverURL, loadAverage())
	updatesFile := filepath.Join(e.dir, "updates.csv")
	if err := writeUpdates(updatesFile, 1, nActions, nRows); err != nil {
		return err
	}
	r, err := applyAndFloor(ctx, e, base, updatesFile, runs)
	if err != nil {
		return err
	}
	fmt.Println("apply steps (returnsd's debug log, first run):")
	printSteps(r.firstOut)
	took, fl := median(r.apply), median(r.floor)
	rowsPerSec := float64(nRows) / took.Seconds()
	ratio := took.Seconds() / fl.Seconds()
	fmt.Printf("apply end to end, runs: %s; floor: %s\n", secs(r.apply), secs(r.floor))
	fmt.Printf("apply end to end: %d rows in %s = %.0f rows/s, %s (target >= 40000)\n", nRows, took.Round(time.Millisecond), rowsPerSec, runsNote(runs, "paired runs"))
	fmt.Printf("peak RSS of returnsd apply: %.1f MB, the highest of the runs (target < 64)\n", float64(r.rss)/(1<<20))
	fmt.Printf("floor (COPY plus one set-based statement, same state change): %s, %s\n", fl.Round(time.Millisecond), runsNote(runs, "paired runs"))
	fmt.Printf("apply / floor: %.2fx (target <= 1.3x)\n", ratio)
	if rowsPerSec < 40000 || r.rss >= 64<<20 || ratio > 1.3 {
		fmt.Println("bench: a target was missed")
	}
	return nil
}

// applyVsFloor is what paired runs of an apply against the floor measured.
type applyVsFloor struct {
	apply, floor []time.Duration // in run order
	rss          int64           // the highest peak RSS of the applies
	firstOut     string          // the first apply's output
}

// applyAndFloor applies the update file with the real binary to copies of
// base, against the floor making the same change to other copies, in paired
// runs; each pair must end with the same actions.
func applyAndFloor(ctx context.Context, e *env, base, updatesFile string, runs int) (applyVsFloor, error) {
	var r applyVsFloor
	var changes []byte
	learned := false
	apply := side{name: "bench", template: base, run: func(ctx context.Context, url string) (time.Duration, error) {
		took, rss, out, err := run(ctx, e.bin, url, "apply", "--config", e.cfg, "--brand", "acme", "--result", filepath.Join(e.dir, "result.csv"), updatesFile)
		if err != nil {
			return 0, err
		}
		r.rss = max(r.rss, rss)
		// The apply goes first in the first run: the floor learns the changes from it.
		if !learned {
			learned = true
			r.firstOut = out
			if changes, err = fileChanges(ctx, url); err != nil {
				return 0, err
			}
		}
		return took, nil
	}}
	floor := side{name: "floor", template: base, run: func(ctx context.Context, url string) (time.Duration, error) {
		return measureFloor(ctx, url, changes)
	}}
	same := func(ctx context.Context, a, b string) error { return sameActions(ctx, a, b, 0, math.MaxInt64) }
	var err error
	r.apply, r.floor, err = pairedRuns(ctx, e, runs, apply, floor, same)
	return r, err
}

// printSteps prints the debug lines of an apply's output: the time of each step.
func printSteps(out string) {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=DEBUG") {
			fmt.Println("   ", line[strings.Index(line, "msg="):])
		}
	}
}

// returnsd runs the binary against url and returns its wall time and peak RSS in bytes.
func returnsd(ctx context.Context, bin, url string, args ...string) (time.Duration, int64, error) {
	took, rss, _, err := run(ctx, bin, url, args...)
	return took, rss, err
}

// run runs the binary against url and returns its wall time, peak RSS in bytes and output.
//
// The peak RSS is the child's own VmHWM, sampled every 10 ms while it runs, not
// its rusage Maxrss: Go starts a child by vfork, and Linux counts what the
// parent had resident at the exec into the child's Maxrss (a bench holding a
// million rows' changes made a 30 MB apply read as 150 MB).
func run(ctx context.Context, bin, url string, args ...string) (time.Duration, int64, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "RETURNSD_CONFIG=")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, "", err
	}
	done, peak := make(chan struct{}), make(chan int64)
	go func() {
		var kb int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := statusKB(cmd.Process.Pid, "VmHWM"); err == nil {
				kb = max(kb, v)
			}
			select {
			case <-done:
				peak <- kb
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	took := time.Since(start)
	close(done)
	kb := <-peak
	if err != nil {
		return 0, 0, "", fmt.Errorf("returnsd %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return took, kb * 1024, out.String(), nil
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

// writeActions writes a tracking export of n actions with ids from first up:
// mostly sales, some leads and clicks, some locked.
func writeActions(path string, first, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency,Payout,State\n")
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := first; i < first+n; i++ {
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

// writeUpdates writes a mixed update file over the nActions actions with ids
// from first up (each once before any twice): reversals, modifications,
// approvals, references by ActionId and by Oid, RequestIds, and rows that must
// be rejected, among them ids past the actions' (ids nActions higher).
func writeUpdates(path string, first, nActions, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("ActionId,Oid,ActionTrackerId,Amount,CurrencyCode,Reason,RequestId,Note\n")
	rng := rand.New(rand.NewPCG(3, 4))
	perm := rng.Perm(nActions)
	for i := 0; i < n; i++ {
		id := first + perm[i%nActions]
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

// ---- Lifecycle phase (issue 3) ----------------------------------------------
//
// benchLifecycle times the lifecycle job (`returnsd lifecycle`) over n PENDING
// actions whose lock and payout dates have both passed: every one of them is
// locked and paid in the run (one update per action, a LOCK and a PAY event
// each), and the brand's funds cover about half of the payouts, so the other half
// are booked as delayed. The actions are generated with INSERT ... SELECT
// generate_series (with their CREATE events), not imported: the import is
// measured above, and this phase measures the lifecycle alone. Each of the runs
// works on a fresh copy of the generated ledger; the figure is their median.
func benchLifecycle(ctx context.Context, e *env, n, runs int) error {
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE lifecyclebase"); err != nil {
		return err
	}
	bin, url := e.bin, e.url("lifecyclebase")
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
			conn.Close(ctx)
			return fmt.Errorf("generate pending actions: %w", err)
		}
	}
	var half string
	err = conn.QueryRow(ctx, "SELECT round(sum(payout) / 2, 2)::text FROM actions").Scan(&half)
	conn.Close(ctx)
	if err != nil {
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
	var times []time.Duration
	var delayed int
	for i := 0; i < runs; i++ {
		if err := e.copyDB(ctx, "lifecycle", "lifecyclebase"); err != nil {
			return err
		}
		if err := e.checkpoint(ctx); err != nil {
			return err
		}
		took, _, out, err := run(ctx, bin, e.url("lifecycle"), "lifecycle", "--at", "2027-02-01T00:00:00Z")
		if err != nil {
			return err
		}
		if i == 0 {
			fmt.Print(out)
		}
		if delayed, err = checkLifecycle(ctx, e.url("lifecycle"), n); err != nil {
			return err
		}
		if err := e.dropDB(ctx, "lifecycle"); err != nil {
			return err
		}
		times = append(times, took)
	}
	if err := e.dropDB(ctx, "lifecyclebase"); err != nil {
		return err
	}
	took := median(times)
	fmt.Printf("lifecycle, runs: %s\n", secs(times))
	fmt.Printf("lifecycle over %d pending actions: %.1f s, %s (target < 20 s); all locked and paid, %d payouts delayed\n",
		n, took.Seconds(), runsNote(runs, "runs"), delayed)
	if took >= 20*time.Second {
		fmt.Println("bench: a target was missed")
	}
	return nil
}

// checkLifecycle checks that the lifecycle run on the ledger at url locked and
// paid all n actions with a balance its events account for, and returns how
// many payouts it delayed.
func checkLifecycle(ctx context.Context, url string, n int) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var locks, pays, delayed int
	var balanceOK bool
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ledger_events WHERE kind = 'LOCK'),
		(SELECT count(*) FROM ledger_events WHERE kind = 'PAY'),
		(SELECT count(*) FROM actions WHERE payout_delayed),
		(SELECT balance FROM brands WHERE slug = 'acme') = (SELECT sum(balance_delta) FROM ledger_events)`).
		Scan(&locks, &pays, &delayed, &balanceOK)
	if err != nil {
		return 0, err
	}
	if locks != n || pays != n || !balanceOK {
		return 0, fmt.Errorf("lifecycle: %d LOCK and %d PAY events for %d actions, balance matches events: %v", locks, pays, n, balanceOK)
	}
	return delayed, nil
}
