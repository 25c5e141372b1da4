package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/returnsd/returnsd/ingest/sftp/sshtest"
	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
)

// The brand's files in TestReplicas.
const (
	replicaActions = 60_000  // acme's actions the files update
	replicaFiles   = 200     // files on the SFTP server
	bigFileRows    = 200_000 // rows of the one large file
	bigFileAt      = 37      // its place among the files, in the order they were sent
)

// brokenAt are the files that cannot be applied, each broken its own way.
var brokenAt = map[int][]byte{
	11:  {},                                         // EMPTY_FILE
	58:  []byte("ActionId;Menge\r\n5001;2\r\n"),     // no kind has these columns
	95:  []byte("\x00\x01\x02\x03\xff\xfe garbage"), // not text
	120: []byte("PK\x03\x04 not a zip at all"),      // a zip that is not one
	151: []byte("ActionId,Oid,Reason,Reason\n100001,,RETURNED,RETURNED\n"),
	187: []byte("Oid,Amount\nORD-1,1.00\n"), // no Reason, no tracker
}

// sentAgainAt are files whose bytes were sent before, under the earlier file's
// place: the brand sent them again under a new name.
var sentAgainAt = map[int]int{45: 3, 70: bigFileAt, 99: 60, 100: 98, 101: 12, 130: 129, 160: 5, 175: 150, 190: 189, 199: 110}

// replicaFile is one of the files the brand sends.
type replicaFile struct {
	name    string
	body    []byte
	rows    int // data rows
	broken  bool
	sameAs  int // sent again: the place of the first; else -1
	modTime time.Time
}

// TestReplicas runs three `returnsd run` processes on one database and one
// SFTP source holding 200 files (some sent twice under new names, some
// broken, one of 200,000 rows) polled every second, SIGKILLs the replica that
// is applying the large file, and, once every file is done, stops the
// replica that leads River (a handover). Then every file was applied exactly
// once, answered and moved, the ledger is the one a single clean run of the
// same files makes (`returnsd apply` of each in the order they were sent, on
// a second database), and each scheduled lifecycle run (every minute)
// happened exactly once.
//
// It takes about two minutes on a 2-core machine (three and a half when
// others load it), most of it waiting on purpose: the lifecycle's schedule
// has a minute's grain, and the test waits for a run scheduled after the
// handover (up to a minute, plus River's leader election) so that each run
// is seen to happen once across the change of leader; and River rescues the
// killed replica's jobs only after rescue_after (see the config) and its
// 30 s rescue interval. The work itself, 200 files with the large one
// applied twice (the kill rolls back the first) and a clean run beside,
// takes under a minute.
func TestReplicas(t *testing.T) {
	t.Parallel()
	began := time.Now()
	ctx := context.Background()
	bin := buildReturnsd(t)
	srv, err := sshtest.StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() }) // after the replicas' cleanups, which run first

	dir := t.TempDir()
	inbox, results, cleanDir := filepath.Join(dir, "inbox"), filepath.Join(dir, "results"), filepath.Join(dir, "clean")
	for _, d := range []string{inbox, results, cleanDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	actionsFile := filepath.Join(dir, "actions.csv")
	writeFile(t, actionsFile, replicaActionsCSV(time.Now()))
	files := planReplicaFiles(time.Now().Add(-2 * time.Hour).Truncate(time.Second))
	for _, f := range files {
		for _, d := range []string{inbox, cleanDir} {
			p := filepath.Join(d, f.name)
			writeFile(t, p, f.body)
			if err := os.Chtimes(p, f.modTime, f.modTime); err != nil {
				t.Fatal(err)
			}
		}
	}
	// rescue_after 60s: every job times out after it (cancelled, rolled back,
	// retried), so it must exceed the large file's apply, about 10 s alone
	// and up to three times that on a busy 2-core machine; and River's
	// rescuer (on the leader, every 30 s) hands the killed replica's running
	// jobs to the others 60-90 s after they started, within the test.
	config := writeConfig(t, dir,
		"  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:0",
		`lifecycle: "5 * * * *"`, `lifecycle: "* * * * *"`,
		"shutdown_timeout: 1m", "shutdown_timeout: 30s")
	appendFile(t, config, fmt.Sprintf(`
queue: {rescue_after: 60s}
spool_dir: %s
sources:
  - name: acme-sftp
    brand: acme
    type: sftp
    address: %s
    username: %s
    private_key_file: %s
    known_hosts: %s
    path: %s
    result_path: %s
    schedule: "@every 1s"
    stable_wait: 1s
    min_age: 1s
`, filepath.Join(dir, "spool"), srv.Addr, srv.User, srv.KeyFile, srv.KnownHosts, inbox, results))

	url := pgtest.NewDatabase(t)
	c := &cli{t: t, env: map[string]string{"DATABASE_URL": url, "USER": "tester", "RETURNSD_CONFIG": config}}
	c.mustRun("migrate")
	c.mustRun("import", "actions", "--brand", "acme", actionsFile)
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	q := &testBundle{dbURL: url, db: db}

	// The clean run, on a second database, beside the replicas' (it takes
	// about as long).
	cleanDone := make(chan cleanRun, 1)
	cleanEnded := make(chan struct{})
	go func() {
		defer close(cleanEnded)
		cleanDone <- runClean(t, actionsFile, cleanDir, files)
	}()
	t.Cleanup(func() {
		select {
		case <-cleanEnded:
		case <-time.After(3 * time.Minute):
			t.Errorf("the clean run did not end within 3 minutes")
		}
	})

	replicas := map[string]*daemonProc{}
	var all []*daemonProc
	for i := range 3 {
		name := fmt.Sprintf("replica-%d", i+1)
		replicas[name] = startDaemon(t, bin, config, url, name)
		all = append(all, replicas[name])
	}
	t.Logf("3 replicas running after %s", time.Since(began).Round(time.Millisecond))

	// The replica applying the large file: the one whose session holds the
	// brand's lock in a transaction begun after the file was received.
	bigSum := sha256.Sum256(files[bigFileAt].body)
	var victim *daemonProc
	var bigID int64
	eventually(t, 3*time.Minute, "a replica applies the large file for 2 s", func() bool {
		var app string
		err := db.QueryRow(ctx, `
			SELECT f.id, a.application_name
			FROM received_files f, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE f.sha256 = $1 AND f.status = 'RECEIVED'
			  AND l.locktype = 'advisory' AND l.classid = x'7265'::int AND l.granted
			  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND a.xact_start > f.received_at AND a.xact_start < now() - interval '2 seconds'`,
			bigSum[:]).Scan(&bigID, &app)
		victim = replicas[app]
		return err == nil && victim != nil
	})
	leaderAtKill := q.leader(t)
	victim.signal(t, syscall.SIGKILL)
	victim.wait(t, 30*time.Second)
	killedAt := time.Now()
	delete(replicas, victim.name)
	// A dead client commits nothing: the file still waiting now means the
	// kill landed inside the apply's transaction.
	if n := q.queryInt(t, "SELECT count(*) FROM received_files WHERE id = $1 AND status = 'RECEIVED'", bigID); n != 1 {
		t.Fatalf("the large file was committed before the kill landed: the test meant to kill its apply midway")
	}
	// The session applying the file ends once its statement does, and the
	// others once they get the brand's lock: the server notices a dead client
	// only when it talks to it.
	ended := time.Now().Add(2 * time.Minute)
	for q.queryInt(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", victim.name) > 0 {
		if time.Now().After(ended) {
			rows, _ := db.Query(ctx, `SELECT concat_ws(' | ', a.pid, a.application_name, a.state, a.wait_event_type, a.wait_event,
					now() - a.xact_start, (SELECT string_agg(l.locktype || ':' || l.granted, ',') FROM pg_locks l
					WHERE l.pid = a.pid AND l.locktype = 'advisory'), left(a.query, 150))
				FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() ORDER BY a.application_name`)
			sessions, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Fatalf("the killed replica's sessions did not end within 2 minutes:\n%s", strings.Join(sessions, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the killed replica's sessions ended %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	t.Logf("%s SIGKILLed while applying the large file (file %d), %s after start; it led River: %v",
		victim.name, bigID, killedAt.Sub(began).Round(time.Millisecond), leaderAtKill == victim.clientID)

	wantResults := 0
	for _, f := range files {
		if !f.broken {
			wantResults++
		}
	}
	waitFor(t, 4*time.Minute, "every file applied, answered and moved", func() string {
		acked := q.queryInt(t, `SELECT count(*) FROM source_files WHERE source = 'acme-sftp' AND state = 'ACKED'`)
		waiting := q.queryInt(t, `SELECT count(*) FROM received_files WHERE status = 'RECEIVED'`)
		got, _ := filepath.Glob(filepath.Join(results, "result_*.csv"))
		if acked == replicaFiles && waiting == 0 && len(got) == wantResults {
			return ""
		}
		return fmt.Sprintf("%d of %d source files acknowledged, %d received files waiting, %d of %d result files; jobs: %s",
			acked, replicaFiles, waiting, len(got), wantResults, q.jobStates(t))
	})
	t.Logf("every file done %s after start", time.Since(began).Round(time.Millisecond))

	// A handover: the leader stops. The next minute's lifecycle run must
	// be made once, by the new leader.
	leader := q.leader(t)
	var stopped *daemonProc
	for _, r := range replicas {
		if r.clientID == leader {
			stopped = r
		}
	}
	if stopped == nil {
		t.Fatalf("the leader %q is none of the running replicas", leader)
	}
	stopped.signal(t, syscall.SIGTERM)
	if code, took := stopped.wait(t, time.Minute); code != 0 {
		t.Errorf("%s exited %d after SIGTERM (%s), want 0", stopped.name, code, took)
	}
	delete(replicas, stopped.name)
	handoverAt := time.Now()
	eventually(t, 2*time.Minute, "a lifecycle run scheduled after the handover completes", func() bool {
		return q.queryInt(t, `SELECT count(*) FROM river_job WHERE kind = 'lifecycle' AND state = 'completed'
			AND (args->>'run_at')::timestamptz > $1`, handoverAt) > 0
	})
	t.Logf("%s (the leader) stopped; a lifecycle run after it done %s after start", stopped.name,
		time.Since(began).Round(time.Millisecond))
	waitFor(t, 3*time.Minute, "the killed replica's jobs rescued and finished", func() string {
		if n := q.queryInt(t, `SELECT count(*) FROM river_job WHERE kind = 'apply_file'
			AND state NOT IN ('completed', 'cancelled', 'discarded')`); n > 0 {
			return fmt.Sprintf("%d apply jobs not finished; jobs: %s", n, q.jobStates(t))
		}
		return ""
	})
	t.Logf("the killed replica's apply jobs done %s after start", time.Since(began).Round(time.Millisecond))
	for _, r := range replicas {
		r.signal(t, syscall.SIGTERM)
		if code, took := r.wait(t, time.Minute); code != 0 {
			t.Errorf("%s exited %d after SIGTERM (%s), want 0", r.name, code, took)
		}
	}
	var clean cleanRun
	select {
	case clean = <-cleanDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("the clean run did not end within 3 minutes")
	}
	if clean.err != "" {
		t.Fatal(clean.err)
	}

	t.Run("EveryFileAppliedOnce", func(t *testing.T) {
		q.checkAppliedOnce(t, files, bigID)
	})
	t.Run("EachFileLoggedAsAppliedByOneReplica", func(t *testing.T) {
		// What a replica logs it also counts in its metrics.
		by := map[string][]string{}
		for _, r := range all {
			for _, line := range strings.Split(r.log(), "\n") {
				if strings.Contains(line, `msg="file applied"`) || strings.Contains(line, `msg="file quarantined"`) {
					name := logValue(line, "file")
					by[name] = append(by[name], r.name)
				}
			}
		}
		for name, replicas := range by {
			if len(replicas) > 1 {
				t.Errorf("%s logged as applied by %v", name, replicas)
			}
		}
		// A job logs the files it applied once it is through them all: the
		// killed one applied its brand's files waiting before the large one
		// and died on that, without a line for them.
		rows, _ := db.Query(ctx, `SELECT name, id < $1 FROM received_files
			WHERE source = 'acme-sftp' AND status IN ('COMPLETED', 'QUARANTINED')`, bigID)
		type file struct {
			Name   string
			Before bool
		}
		applied, _ := pgx.CollectRows(rows, pgx.RowToStructByPos[file])
		var unlogged []string
		for _, f := range applied {
			if by[f.Name] == nil {
				unlogged = append(unlogged, f.Name)
				if !f.Before {
					t.Errorf("%s, applied after the kill, was not logged as applied", f.Name)
				}
			}
		}
		t.Logf("%d of %d files applied logged as applied once; not logged: %v", len(applied)-len(unlogged), len(applied), unlogged)
	})
	t.Run("EveryFileAnsweredAndMoved", func(t *testing.T) {
		names := fileNames(t, db)
		for _, f := range files {
			got, err := readAnswer(results, "result_", f.name)
			switch {
			case f.broken:
				if err == nil {
					t.Errorf("%s was broken but has a result file", f.name)
				}
				if receipt, err := readAnswer(results, "receipt_", f.name); err != nil || !bytes.Contains(receipt, []byte(",QUARANTINED,")) {
					t.Errorf("%s was broken but its receipt is %q (%v)", f.name, receipt, err)
				}
			case err != nil:
				t.Errorf("%s has no result file: %v", f.name, err)
			case byFileName(got, names) != byFileName(clean.results[f.name], clean.fileNames):
				t.Errorf("%s's result file differs from the clean run's:\n%s", f.name,
					firstDiff(strings.Split(byFileName(got, names), "\n"),
						strings.Split(byFileName(clean.results[f.name], clean.fileNames), "\n")))
			}
			where := "processed"
			if f.broken {
				where = "failed"
			}
			if _, err := os.Stat(filepath.Join(inbox, where, f.name)); err != nil {
				t.Errorf("%s was not moved to %s/: %v", f.name, where, err)
			}
		}
		left, _ := os.ReadDir(inbox)
		for _, e := range left {
			if !e.IsDir() {
				t.Errorf("%s left in the inbox", e.Name())
			}
		}
	})
	t.Run("TheLedgerIsThatOfOneCleanRun", func(t *testing.T) {
		got := captureReplicaLedger(t, url, db)
		if !slices.Equal(got.export, clean.ledger.export) {
			t.Errorf("export actions differs from the clean run's:\n%s", firstDiff(got.export, clean.ledger.export))
		}
		if got.balances != clean.ledger.balances {
			t.Errorf("export balances:\n%s\nthe clean run's:\n%s", got.balances, clean.ledger.balances)
		}
		if !slices.Equal(got.events, clean.ledger.events) {
			t.Errorf("ledger events differ (%d, clean %d):\n%s", len(got.events), len(clean.ledger.events),
				firstDiff(got.events, clean.ledger.events))
		}
		if !slices.Equal(got.requestIDs, clean.ledger.requestIDs) {
			t.Errorf("request ids differ:\n%s", firstDiff(got.requestIDs, clean.ledger.requestIDs))
		}
	})
	t.Run("EachLifecycleRunHappenedOnce", func(t *testing.T) {
		rows, err := db.Query(ctx, `SELECT (args->>'run_at')::timestamptz, state, attempt FROM river_job
			WHERE kind = 'lifecycle' ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		type run struct {
			At      time.Time
			State   string
			Attempt int
		}
		runs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[run])
		if err != nil {
			t.Fatal(err)
		}
		var ats []string
		for i, r := range runs {
			ats = append(ats, r.At.UTC().Format("15:04"))
			if r.At.Second() != 0 || r.At.Nanosecond() != 0 {
				t.Errorf("lifecycle run named %s: not a scheduled minute", r.At)
			}
			if i > 0 && !r.At.Equal(runs[i-1].At.Add(time.Minute)) {
				t.Errorf("lifecycle runs at %s and then %s: want one every minute, each once",
					runs[i-1].At.UTC().Format(time.TimeOnly), r.At.UTC().Format(time.TimeOnly))
			}
			if r.State != "completed" && i < len(runs)-1 {
				t.Errorf("lifecycle run of %s is %s", r.At.UTC().Format(time.TimeOnly), r.State)
			}
		}
		t.Logf("lifecycle runs (UTC): %s; the kill at %s, the handover at %s", strings.Join(ats, " "),
			killedAt.UTC().Format(time.TimeOnly), handoverAt.UTC().Format(time.TimeOnly))
		if len(runs) < 2 {
			t.Errorf("%d lifecycle runs; the test spans at least two minutes", len(runs))
		}
	})
	t.Run("TheKilledReplicasJobsWereRescued", func(t *testing.T) {
		if n := q.queryInt(t, `SELECT count(*) FROM river_job WHERE state = 'running'`); n != 0 {
			t.Errorf("%d jobs still running after every replica stopped", n)
		}
		if n := q.queryInt(t, `SELECT count(*) FROM river_job WHERE $1 = ANY(attempted_by) AND attempt > 1
			AND state = 'completed'`, victim.clientID); n == 0 {
			t.Errorf("no job of the killed replica was run again by another")
		}
	})
	t.Logf("the whole test took %s", time.Since(began).Round(time.Millisecond))
}

// jobStates counts River's jobs by kind and state.
func (b *testBundle) jobStates(t *testing.T) string {
	t.Helper()
	rows, err := b.db.Query(context.Background(), `SELECT kind || ' ' || state || ' ' || count(*) FROM river_job
		GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		t.Fatal(err)
	}
	states, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(states, ", ")
}

// leader is the client id of River's leader now (polled until there is one).
func (b *testBundle) leader(t *testing.T) string {
	t.Helper()
	var id string
	eventually(t, time.Minute, "River has a leader", func() bool {
		err := b.db.QueryRow(context.Background(), "SELECT leader_id FROM river_leader WHERE expires_at > now()").Scan(&id)
		return err == nil
	})
	return id
}

// checkAppliedOnce checks that each distinct content was applied once: one
// COMPLETED record with one event per applied row, every broken file
// quarantined, and no event twice.
func (b *testBundle) checkAppliedOnce(t *testing.T, files []replicaFile, bigID int64) {
	t.Helper()
	ctx := context.Background()
	for i, f := range files {
		sum := sha256.Sum256(f.body)
		var completed, quarantined, events, applied, total int64
		err := b.db.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE status = 'COMPLETED'), count(*) FILTER (WHERE status = 'QUARANTINED'),
				coalesce(sum((SELECT count(*) FROM ledger_events e WHERE e.file_id = f.id)), 0),
				coalesce(sum(rows_applied), 0), coalesce(sum(rows_total), 0)
			FROM received_files f WHERE sha256 = $1 AND source = 'acme-sftp'`, sum[:]).
			Scan(&completed, &quarantined, &events, &applied, &total)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.broken:
			if completed != 0 || quarantined < 1 || events != 0 {
				t.Errorf("%s (broken): %d COMPLETED and %d QUARANTINED records, %d events", f.name, completed, quarantined, events)
			}
		case completed != 1:
			t.Errorf("%s: %d COMPLETED records of its bytes, want 1", f.name, completed)
		case events != applied || total != int64(f.rows):
			t.Errorf("%s: %d events for %d applied rows; %d rows of %d counted", f.name, events, applied, total, f.rows)
		}
		if f.sameAs < 0 {
			continue
		}
		var status string
		err = b.db.QueryRow(ctx, `SELECT status FROM source_files WHERE source = 'acme-sftp' AND path LIKE '%/' || $1`,
			f.name).Scan(&status)
		if err != nil || (status != "DUPLICATE_FILE" && status != "COMPLETED") {
			t.Errorf("%s, sent again (file %d): source file status %q (%v)", f.name, i, status, err)
		}
	}
	if n := b.queryInt(t, `SELECT count(*) - count(DISTINCT (file_id, line)) FROM ledger_events WHERE file_id IS NOT NULL`); n != 0 {
		t.Errorf("%d events repeat a file's line", n)
	}
	if n := b.queryInt(t, `SELECT count(*) FROM received_files WHERE status = 'RECEIVED'`); n != 0 {
		t.Errorf("%d received files left unapplied", n)
	}
	var statuses []string
	rows, _ := b.db.Query(ctx, `SELECT status || ' ' || count(*) FROM source_files GROUP BY status ORDER BY 1`)
	statuses, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	t.Logf("source files by status: %v (a file sent again before the first was applied is answered as that file, COMPLETED)", statuses)
}

// replicaLedger is what a brand and the platform see of the ledger, without
// the ids, actors and times that differ between two databases.
type replicaLedger struct {
	export     []string // returnsd export actions --brand acme
	balances   string   // returnsd export balances
	events     []string
	requestIDs []string
}

func captureReplicaLedger(t testing.TB, url string, db *pgx.Conn) replicaLedger {
	t.Helper()
	c := &cli{t: t, env: map[string]string{"DATABASE_URL": url, "USER": "tester"}}
	s := replicaLedger{
		export:   strings.Split(c.mustRun("export", "actions", "--brand", "acme"), "\n"),
		balances: c.mustRun("export", "balances"),
	}
	query := func(sql string) []string {
		rows, err := db.Query(context.Background(), sql)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	s.events = query(`SELECT concat_ws('|', e.kind, e.action_id, e.line, f.name, e.request_id, e.reason, e.note,
			e.old_state, e.new_state, e.old_amount, e.new_amount, e.old_payout, e.new_payout)
		FROM ledger_events e LEFT JOIN received_files f ON f.id = e.file_id ORDER BY e.action_id, e.id`)
	s.requestIDs = query(`SELECT concat_ws('|', r.request_id, r.content_hash, r.line, f.name)
		FROM request_ids r JOIN received_files f ON f.id = r.file_id ORDER BY r.request_id`)
	return s
}

// cleanRun is the ledger and result files of one clean run of the files.
type cleanRun struct {
	ledger    replicaLedger
	results   map[string][]byte
	fileNames map[string]string // by id
	err       string
}

// runClean applies the files, in the order they were sent, on a fresh
// database holding the same actions, as `returnsd apply` does (its pipeline
// and result file; one open ledger for all, not one process each, which
// would cost this test a minute). It runs beside the test, so it reports a
// failure instead of failing.
func runClean(t *testing.T, actionsFile, dir string, files []replicaFile) (out cleanRun) {
	defer func() {
		if r := recover(); r != nil {
			out.err = fmt.Sprint("the clean run: ", r)
		}
	}()
	ctx := context.Background()
	ft := &failOnly{TB: t}
	url := pgtest.NewDatabase(ft)
	c := &cli{t: ft, env: map[string]string{"DATABASE_URL": url, "USER": "tester"}}
	c.mustRun("migrate")
	c.mustRun("import", "actions", "--brand", "acme", actionsFile)
	e := &env{getenv: c.getenv, stdout: io.Discard, stderr: io.Discard}
	if err := e.loadConfig(""); err != nil {
		return cleanRun{err: err.Error()}
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return cleanRun{err: err.Error()}
	}
	defer l.Close()
	acme, _ := e.cfg.Brand("acme")
	out.results = map[string][]byte{}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		result := filepath.Join(dir, filename.Result(f.name, 0))
		w, err := createResult(result, nil)
		if err != nil {
			return cleanRun{err: err.Error()}
		}
		res, err := e.pipeline(l).Process(ctx, pipeline.Params{Brand: "acme", Format: pipeline.Format(acme),
			Source: "cli", Actor: "cli:tester", Path: path, Result: w.tmp})
		if err == nil && res.WroteResult {
			err = w.commit()
		}
		w.discard()
		switch {
		case err != nil:
			return cleanRun{err: fmt.Sprintf("the clean run: %s: %v", f.name, err)}
		case (res.Status == outcome.Quarantined) != f.broken:
			return cleanRun{err: fmt.Sprintf("the clean run: %s: %s %s %s", f.name, res.Status, res.Code, res.Reason)}
		case !f.broken:
			if out.results[f.name], err = os.ReadFile(result); err != nil {
				return cleanRun{err: "the clean run: " + err.Error()}
			}
		}
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		return cleanRun{err: err.Error()}
	}
	defer db.Close(ctx)
	out.ledger = captureReplicaLedger(ft, url, db)
	out.fileNames = fileNames(ft, db)
	return out
}

// fileNames are the names of a database's received files by id.
func fileNames(t testing.TB, db *pgx.Conn) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT id::text, name FROM received_files")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		names[id] = name
	}
	return names
}

// fileIDs are the ids of files in result messages ("was applied by file 138, line 126").
var fileIDs = regexp.MustCompile(`\bby file ([0-9]+)\b`)

// byFileName writes the file ids in a result file's messages as the files'
// names: two databases give the same file different ids.
func byFileName(result []byte, names map[string]string) string {
	return fileIDs.ReplaceAllStringFunc(string(result), func(m string) string {
		return "by file " + names[strings.TrimPrefix(m, "by file ")]
	})
}

// failOnly is a testing.TB whose Fatal panics, for code running outside the
// test's goroutine (runClean recovers it into its error).
type failOnly struct{ testing.TB }

func (f *failOnly) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (f *failOnly) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (f *failOnly) Helper()                           {}

// planReplicaFiles makes the brand's 200 files, modified a second apart
// from base in the order they were sent: update files of a few to a few
// hundred rows, the large one, the broken ones, and the ones sent again.
func planReplicaFiles(base time.Time) []replicaFile {
	rng := rand.New(rand.NewPCG(9, 10))
	var requests [][]string
	files := make([]replicaFile, replicaFiles)
	for i := range files {
		f := replicaFile{name: fmt.Sprintf("returns_%03d.csv", i), sameAs: -1, modTime: base.Add(time.Duration(i) * time.Second)}
		switch body, broken := brokenAt[i]; {
		case broken:
			f.name, f.body, f.broken = fmt.Sprintf("broken_%03d.csv", i), body, true
		case sentAgainAt[i] != 0:
			first := files[sentAgainAt[i]]
			f.name, f.body, f.rows, f.sameAs = fmt.Sprintf("resent_%03d.csv", i), first.body, first.rows, sentAgainAt[i]
		case i == bigFileAt:
			f.rows = bigFileRows
			f.body = replicaUpdates(rng, i, f.rows, &requests)
		default:
			f.rows = 3 + rng.IntN(120)
			f.body = replicaUpdates(rng, i, f.rows, &requests)
		}
		files[i] = f
	}
	return files
}

// replicaActionsCSV is acme's tracking export: replicaActions actions, pending,
// locked or reversed, all from the last days, so no lock or payout date passes
// while the test runs: the lifecycle, running every minute, changes nothing,
// and the ledger stays comparable with a run that has none (none is approved:
// see replicaUpdates).
func replicaActionsCSV(now time.Time) []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"ActionId", "PartnerId", "ActionTrackerId", "Oid", "EventDate", "Amount", "Currency", "Payout", "State"})
	for i := range replicaActions {
		tracker := "1001"
		if rng.IntN(20) == 0 {
			tracker = "1003"
		}
		state := "PENDING"
		switch r := rng.IntN(100); {
		case r < 4:
			state = "LOCKED"
		case r < 8:
			state = "REVERSED"
		}
		date := now.Add(-time.Duration(1+rng.IntN(10*24)) * time.Hour).UTC()
		w.Write([]string{strconv.Itoa(100_000 + i), strconv.Itoa(700 + i%53), tracker, fmt.Sprintf("ORD-%06d", i),
			date.Format(time.RFC3339), cents(rng.IntN(100_000) + 500), "USD", "", state})
	}
	w.Flush()
	return b.Bytes()
}

// There are no approvals: the lifecycle, every minute, locks every approved
// action, so when it ran would decide what later rows find, and the ledger
// would not be comparable with a clean run.
//
// replicaUpdates is an update file of n rows: reversals, modifications and
// resets, by ActionId or Oid, RequestIds new and reused (from
// this file or an earlier one, with the same content or not), and rows that
// are rejected. Later files change what earlier ones did: the order they are
// applied in shows in the ledger.
func replicaUpdates(rng *rand.Rand, file, n int, requests *[][]string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"ActionId", "Oid", "ActionTrackerId", "Operation", "Amount", "CurrencyCode", "Reason", "RequestId", "Note"})
	for r := range n {
		i := rng.IntN(replicaActions)
		id, oid, tracker := strconv.Itoa(100_000+i), "", ""
		if rng.IntN(6) == 0 {
			id, oid, tracker = "", fmt.Sprintf("ORD-%06d", i), "1001"
		}
		var op, amount, currency, reason, requestID, note string
		switch x := rng.IntN(100); {
		case x < 45:
			reason, amount = "ORDER_UPDATE", cents(rng.IntN(100_000))
		case x < 75:
			reason = []string{"RETURNED", "FRAUD", "ITEM_OUT_OF_STOCK"}[rng.IntN(3)]
		case x < 95:
			op, reason = "RESET", "RESET"
		case x < 97:
			id, oid = strconv.Itoa(500_000+rng.IntN(400_000)), "" // no such action
			reason = "RETURNED"
		default:
			reason, amount = "ORDER_UPDATE", "12.345"
		}
		if rng.IntN(4) == 0 {
			currency = "USD"
		}
		if rng.IntN(4) == 0 {
			requestID = fmt.Sprintf("RQ-%d-%d", file, r)
		}
		if rng.IntN(10) == 0 {
			note = fmt.Sprintf("batch %d, row %d", file, r+2)
		}
		rec := []string{id, oid, tracker, op, amount, currency, reason, requestID, note}
		if len(*requests) > 0 && rng.IntN(100) < 2 {
			rec = slices.Clone((*requests)[rng.IntN(len(*requests))])
			if rng.IntN(2) == 0 {
				rec[8] = "changed"
			}
		} else if requestID != "" && len(*requests) < 5000 {
			*requests = append(*requests, rec)
		}
		w.Write(rec)
	}
	w.Flush()
	return b.Bytes()
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// readAnswer reads the one result (prefix "result_") or receipt ("receipt_") of
// the file named name in dir: <prefix><stem>_<file id>.csv.
func readAnswer(dir, prefix, name string) ([]byte, error) {
	stem := prefix + filename.Stem(name) + "_"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, e := range entries {
		id, ok := strings.CutPrefix(e.Name(), stem)
		if id, ok = strings.CutSuffix(id, ".csv"); ok && id != "" && strings.Trim(id, "0123456789") == "" {
			found = append(found, e.Name())
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d files named %s<id>.csv: %q", len(found), stem, found)
	}
	return os.ReadFile(filepath.Join(dir, found[0]))
}
