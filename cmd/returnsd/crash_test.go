package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/pgtest"
)

const (
	crashActions = 1_000
	crashRows    = 50_000
)

// TestCrashSafety kills the real binary with SIGKILL at many points of an apply (and
// of an import) and checks that, once a run finally completes, the ledger is exactly
// what one clean run makes: nothing half-applied, nothing applied twice, every line
// with exactly one outcome.
//
// It is long (about a minute on a quiet 2-core machine, two under load): each kill
// point is a run of the real binary over a 50,000-row file against PostgreSQL, and
// the points must reach deep into the apply to mean anything.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	bin := buildReturnsd(t)
	files := t.TempDir()
	writeCrashActions(t, filepath.Join(files, "actions.csv"))
	writeCrashUpdates(t, filepath.Join(files, "updates.csv"))
	sum := fileSHA256(t, filepath.Join(files, "updates.csv"))

	// Database A: the clean run, the ledger every crashed run must end at.
	a, actionsFile, updatesFile := newCrashDB(t, bin, files)
	a.mustRun(t, "migrate")
	began := time.Now()
	a.mustRun(t, "import", "actions", "--brand", "acme", actionsFile)
	importTook := time.Since(began)
	loaded := a.capture(t)
	began = time.Now()
	out := a.mustRun(t, "apply", "--brand", "acme", updatesFile)
	applyTook := time.Since(began)
	applied := a.capture(t)
	cleanResult, err := os.ReadFile(resultOf(updatesFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clean run: import %v, apply %v:\n%s", importTook.Round(time.Millisecond), applyTook.Round(time.Millisecond), out)
	if applied.export == loaded.export || len(applied.events) <= len(loaded.events)+crashActions/2 {
		t.Fatalf("the update file changed too little to test anything (%d events before, %d after)",
			len(loaded.events), len(applied.events))
	}
	for _, code := range []string{"ACTION_NOT_FOUND", "DUPLICATE_OPERATION", "REQUEST_ID_CONFLICT", "ACTION_LOCKED", "INVALID_AMOUNT"} {
		if !strings.Contains(out, code) {
			t.Errorf("the update file has no %s row; it should exercise every path", code)
		}
	}

	t.Run("KillsAnywhereEndInTheLedgerOfOneCleanRun", func(t *testing.T) {
		t.Parallel()
		b, actionsFile, updatesFile := newCrashDB(t, bin, files)
		b.mustRun(t, "migrate")
		for i, frac := range []float64{0, 0.1, 0.2, 0.3, 0.4, 0.6} {
			k := b.killAfter(t, time.Duration(frac*float64(importTook)), "import", "actions", "--brand", "acme", actionsFile)
			t.Logf("import kill %d after %3dms: exited %v, files %v", i+1,
				time.Duration(frac*float64(importTook)).Milliseconds(), k.exited, b.fileStates(t))
		}
		b.mustRun(t, "import", "actions", "--brand", "acme", actionsFile)
		if got := b.capture(t); !got.equal(t, loaded) {
			t.Fatalf("after killed imports the ledger differs from a clean import")
		}

		delays := []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond}
		const points = 18
		for i := range points {
			delays = append(delays, time.Duration(float64(applyTook)*1.1*float64(i)/float64(points-1)))
		}
		var before, received, committedUnreported, finished int
		for i, d := range delays {
			k := b.killAfter(t, d, "apply", "--brand", "acme", updatesFile)
			state := b.fileStates(t)
			switch {
			case k.exited:
				finished++
			case state["COMPLETED"] > 1: // the import's and this file's
				committedUnreported++
			case state["RECEIVED"] > 0:
				received++
			default:
				before++
			}
			if state["COMPLETED"] == 1 {
				// Not committed: the kill must have left no trace but the received bytes.
				if got := b.capture(t); !got.sameLedger(t, loaded) {
					t.Fatalf("kill %d after %v, before the commit, changed the ledger", i+1, d)
				}
			}
			t.Logf("apply kill %2d after %4dms: exited %v, files %v", i+1, d.Milliseconds(), k.exited, state)
		}
		t.Logf("kills of apply: %d before the file was received, %d after it was received and before the commit, "+
			"%d after the commit before the run finished, %d after the run finished",
			before, received, committedUnreported, finished)
		if before+received < 5 {
			t.Errorf("only %d kills landed before the commit; the test did not test much", before+received)
		}
		if received < 3 {
			t.Errorf("only %d kills landed between receiving and committing the file (mid-apply)", received)
		}

		out := b.mustRun(t, "apply", "--brand", "acme", updatesFile)
		t.Logf("the run let finish: %s", out)
		if got := b.capture(t); !got.equal(t, applied) {
			t.Fatalf("after killed applies the ledger differs from a clean apply")
		}
		b.checkCompletedOnce(t, sum[:])
		leftovers, _ := filepath.Glob(filepath.Join(b.dir, ".result-*.tmp"))
		t.Logf("killed runs left %d temporary result files (.result-*.tmp) beside the input", len(leftovers))
		if strings.HasPrefix(out, "COMPLETED") {
			result, err := os.ReadFile(resultOf(updatesFile))
			if err != nil || !bytes.Equal(result, cleanResult) {
				t.Errorf("the result file after the crashes differs from the clean run's (%v)", err)
			}
		} else {
			// A kill landed after the commit; see AKillAfterTheCommitStillLeavesTheBrandItsResultFile.
			t.Logf("the file was committed by a killed run; the result file is not checked here")
		}
	})

	t.Run("AKillAfterTheCommitStillLeavesTheBrandItsResultFile", func(t *testing.T) {
		t.Parallel()
		b, actionsFile, updatesFile := newCrashDB(t, bin, files)
		b.mustRun(t, "migrate")
		b.mustRun(t, "import", "actions", "--brand", "acme", actionsFile)

		// Killed the moment the file's COMPLETED mark is visible: after the commit,
		// while the result file is being written.
		k := b.killWhen(t, func() bool {
			return b.queryInt(t, "SELECT count(*) FROM received_files WHERE sha256 = $1 AND status = 'COMPLETED'", sum[:]) > 0
		}, "apply", "--brand", "acme", updatesFile)
		if k.exited {
			t.Fatalf("the run finished before the kill; it was meant to land between the commit and the result file")
		}
		if _, err := os.Stat(resultOf(updatesFile)); err == nil {
			t.Fatalf("the result file was written before the kill; it was meant to land before")
		}
		out := b.mustRun(t, "apply", "--brand", "acme", updatesFile)

		if got := b.capture(t); !got.sameLedger(t, applied) {
			t.Fatalf("the ledger differs from a clean apply")
		}
		b.checkCompletedOnce(t, sum[:])
		result, err := os.ReadFile(resultOf(updatesFile))
		if err != nil || !bytes.Equal(result, cleanResult) {
			t.Errorf("after a crash between the commit and the result file, the rerun said\n%s"+
				"and left the brand without the file's result (%v): SPEC §4 gives every file one", out, err)
		}
	})
}

func resultOf(path string) string {
	return filepath.Join(filepath.Dir(path), "result_"+strings.TrimSuffix(filepath.Base(path), ".csv")+".csv")
}

// checkCompletedOnce asserts that the file of these bytes is COMPLETED exactly
// once, no file is left half-way, and every line of it has exactly one outcome.
func (d *crashDB) checkCompletedOnce(t *testing.T, sum []byte) {
	t.Helper()
	rows, _ := d.db.Query(context.Background(),
		"SELECT id FROM received_files WHERE sha256 = $1 AND status = 'COMPLETED'", sum)
	completed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(completed) != 1 {
		t.Fatalf("%d COMPLETED records of the update file, want exactly 1", len(completed))
	}
	if n := d.queryInt(t, "SELECT count(*) FROM received_files WHERE status IN ('RECEIVED', 'QUARANTINED')"); n != 0 {
		t.Errorf("%d received files left RECEIVED or QUARANTINED", n)
	}
	outcomes := d.queryInt(t, "SELECT count(*) FROM row_outcomes WHERE file_id = $1", completed[0])
	lines := d.queryInt(t, "SELECT count(DISTINCT line) FROM row_outcomes WHERE file_id = $1", completed[0])
	if outcomes != crashRows || lines != crashRows {
		t.Errorf("the completed file has %d outcomes on %d distinct lines, want one on each of its %d rows",
			outcomes, lines, crashRows)
	}
	if n := d.queryInt(t, "SELECT count(*) FROM row_outcomes WHERE file_id <> $1 AND file_id IN "+
		"(SELECT id FROM received_files WHERE sha256 = $2)", completed[0], sum); n != 0 {
		t.Errorf("%d outcomes recorded for other records of the same bytes", n)
	}
}

// crashDB is a database that the binary runs against as a child process.
type crashDB struct {
	testBundle
	bin  string
	runs int
}

// newCrashDB makes a database and a folder holding a copy of the test's files, so
// each database's result files are its own. It returns the copies' paths.
func newCrashDB(t *testing.T, bin, files string) (d *crashDB, actionsFile, updatesFile string) {
	dir := t.TempDir()
	for _, name := range []string{"actions.csv", "updates.csv"} {
		data, err := os.ReadFile(filepath.Join(files, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), data)
	}
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &crashDB{testBundle: testBundle{dbURL: url, db: conn, dir: dir}, bin: bin},
		filepath.Join(dir, "actions.csv"), filepath.Join(dir, "updates.csv")
}

// command is the binary with args, its connections named so they can be found in pg_stat_activity.
func (d *crashDB) command(args ...string) (*exec.Cmd, string) {
	d.runs++
	app := fmt.Sprintf("returnsd-crash-%d", d.runs)
	cmd := exec.Command(d.bin, args...)
	cmd.Env = []string{"DATABASE_URL=" + d.dbURL + "&application_name=" + app, "USER=crash"}
	return cmd, app
}

func (d *crashDB) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	cmd, _ := d.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("returnsd %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

type kill struct {
	exited bool // the run finished before the kill
}

// killAfter starts the binary, SIGKILLs it after delay, and waits until the
// database has ended every session of the killed run (and so rolled back or
// committed what it was doing).
func (d *crashDB) killAfter(t *testing.T, delay time.Duration, args ...string) kill {
	t.Helper()
	var began time.Time
	return d.kill(t, func() bool {
		if began.IsZero() {
			began = time.Now()
		}
		return time.Since(began) >= delay
	}, args...)
}

// killWhen is killAfter, killing as soon as cond holds.
func (d *crashDB) killWhen(t *testing.T, cond func() bool, args ...string) kill {
	t.Helper()
	return d.kill(t, cond, args...)
}

// kill runs the binary and SIGKILLs it once now (polled about every millisecond) says so.
func (d *crashDB) kill(t *testing.T, now func() bool, args ...string) kill {
	t.Helper()
	cmd, app := d.command(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var k kill
	for {
		if now() {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Fatal(err)
			}
			err := <-exited
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				k.exited = true // it finished just before the signal
				if err != nil {
					t.Fatalf("returnsd %s failed: %v\n%s", strings.Join(args, " "), err, out.String())
				}
			}
			break
		}
		select {
		case err := <-exited:
			k.exited = true
			if err != nil {
				t.Fatalf("returnsd %s failed before it was killed: %v\n%s", strings.Join(args, " "), err, out.String())
			}
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	deadline := time.Now().Add(30 * time.Second)
	for d.queryInt(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the killed run's database sessions did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return k
}

// fileStates counts received files by status.
func (d *crashDB) fileStates(t *testing.T) map[string]int {
	t.Helper()
	rows, err := d.db.Query(context.Background(), "SELECT status, count(*) FROM received_files GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		m[s] = n
	}
	return m
}

// ledgerState is what a brand and the platform can see of the ledger, without the
// ids and times that differ between two databases.
type ledgerState struct {
	export     string   // returnsd export actions --brand acme
	events     []string // ledger_events by action, in order
	requestIDs []string
	files      map[string]int // received files by status, DUPLICATE_FILE aside
}

func (d *crashDB) capture(t *testing.T) ledgerState {
	t.Helper()
	var s ledgerState
	c := &cli{t: t, env: map[string]string{"DATABASE_URL": d.dbURL, "USER": "crash"}}
	s.export = c.exportCSV()
	s.events = d.strings(t, `
		SELECT concat_ws('|', kind, action_id, line, actor, request_id, reason, note, old_state, new_state,
			old_amount, new_amount, old_payout, new_payout)
		FROM ledger_events ORDER BY action_id, id`)
	s.requestIDs = d.strings(t, `
		SELECT concat_ws('|', request_id, content_hash, line) FROM request_ids ORDER BY request_id`)
	s.files = d.fileStates(t)
	delete(s.files, "DUPLICATE_FILE") // a rerun after a kill that landed after the commit records one
	return s
}

func (d *crashDB) strings(t *testing.T, sql string) []string {
	t.Helper()
	rows, err := d.db.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// equal reports whether two ledgers and their received files are the same,
// logging the first difference.
func (s ledgerState) equal(t *testing.T, want ledgerState) bool {
	t.Helper()
	eq := s.sameLedger(t, want)
	if fmt.Sprint(s.files) != fmt.Sprint(want.files) {
		t.Errorf("received files by status %v, want %v", s.files, want.files)
		eq = false
	}
	return eq
}

// sameLedger reports whether two ledgers are the same, logging the first difference.
func (s ledgerState) sameLedger(t *testing.T, want ledgerState) bool {
	t.Helper()
	eq := true
	if s.export != want.export {
		t.Errorf("export actions differs:\n%s", firstDiff(strings.Split(s.export, "\n"), strings.Split(want.export, "\n")))
		eq = false
	}
	if !slices.Equal(s.events, want.events) {
		t.Errorf("ledger events differ (%d vs %d):\n%s", len(s.events), len(want.events), firstDiff(s.events, want.events))
		eq = false
	}
	if !slices.Equal(s.requestIDs, want.requestIDs) {
		t.Errorf("request ids differ (%d vs %d):\n%s", len(s.requestIDs), len(want.requestIDs), firstDiff(s.requestIDs, want.requestIDs))
		eq = false
	}
	return eq
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("line %d:\n got %q\nwant %q", i+1, g, w)
		}
	}
	return "(equal)"
}

// writeCrashActions writes acme's tracking export: crashActions actions on its three
// trackers, in every state, some sharing an order id.
func writeCrashActions(t *testing.T, path string) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"ActionId", "PartnerId", "ActionTrackerId", "Oid", "EventDate", "Amount", "Currency", "Payout", "State"})
	for i := range crashActions {
		tracker := "1001"
		switch r := rng.IntN(100); {
		case r < 5:
			tracker = "1003"
		case r < 12:
			tracker = "1002"
		}
		state := "PENDING"
		switch r := rng.IntN(100); {
		case r < 10:
			state = "APPROVED"
		case r < 15:
			state = "LOCKED"
		case r < 18:
			state = "PAID"
		case r < 23:
			state = "REVERSED"
		}
		oid := fmt.Sprintf("ORD-%05d", i-i%7/6) // now and then two actions share an order id
		date := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 97 * time.Minute)
		w.Write([]string{strconv.Itoa(crashActionID(i)), strconv.Itoa(700 + i%41), tracker, oid,
			date.Format(time.RFC3339), cents(rng.IntN(100_000) + 500), "USD", "", state})
	}
	w.Flush()
	writeFile(t, path, b.Bytes())
}

func crashActionID(i int) int { return 100_000 + i }

func cents(n int) string { return fmt.Sprintf("%d.%02d", n/100, n%100) }

// writeCrashUpdates writes crashRows update rows for those actions: reversals,
// modifications (some to 0), approvals and resets, by ActionId or by Oid, with and
// without an Operation column value, many rows per action in file order, some
// with RequestIds (repeated, and reused with other content), and a tenth rejected.
func writeCrashUpdates(t *testing.T, path string) {
	rng := rand.New(rand.NewPCG(3, 4))
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"ActionId", "Oid", "ActionTrackerId", "Operation", "Amount", "CurrencyCode", "Reason", "RequestId", "Note"})
	type row = []string
	var requests []row
	for n := range crashRows {
		i := rng.IntN(crashActions)
		id, oid, tracker := strconv.Itoa(crashActionID(i)), "", ""
		if rng.IntN(5) == 0 {
			id, oid, tracker = "", fmt.Sprintf("ORD-%05d", i-i%7/6), "1001"
		}
		var op, amount, currency, reason, requestID, note string
		switch r := rng.IntN(100); {
		case r < 35:
			op, reason, amount = "MODIFY", "ORDER_UPDATE", cents(rng.IntN(100_000))
			if rng.IntN(20) == 0 {
				amount = "0"
			}
		case r < 60:
			op, reason = "REVERSE", []string{"RETURNED", "FRAUD", "ITEM_OUT_OF_STOCK", "ReturnedMerchandise"}[rng.IntN(4)]
		case r < 78:
			op, reason = "APPROVE", "APPROVED"
		default:
			op, reason = "RESET", "RESET"
		}
		if rng.IntN(3) > 0 {
			op = "" // derived from Reason and Amount
		}
		if rng.IntN(4) == 0 {
			currency = "USD"
		}
		if rng.IntN(3) == 0 {
			requestID = fmt.Sprintf("RQ-%d", n)
		}
		if rng.IntN(10) == 0 {
			note = fmt.Sprintf("row %d, \"quoted\"", n+2)
		}
		switch r := rng.IntN(100); {
		case r < 2:
			id, oid = "999999", ""
		case r < 4:
			reason = "WHATEVER"
		case r < 6:
			amount, reason, op = "12.345", "ORDER_UPDATE", ""
		case r < 7:
			currency = "EUR"
		case r < 8:
			reason = ""
		}
		rec := row{id, oid, tracker, op, amount, currency, reason, requestID, note}
		if len(requests) > 0 && rng.IntN(100) < 2 {
			// A RequestId again: the same row (a duplicate) or other content (a conflict).
			rec = slices.Clone(requests[rng.IntN(len(requests))])
			if rng.IntN(2) == 0 {
				rec[8] = "changed"
			}
		} else if requestID != "" {
			requests = append(requests, rec)
		}
		w.Write(rec)
	}
	w.Flush()
	writeFile(t, path, b.Bytes())
}
