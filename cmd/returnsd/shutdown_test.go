package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/returnsd/returnsd/internal/pgtest"
)

// shutdownRows is the size of the file the daemon is stopped in the middle
// of: about 10 s to apply alone on a 2-core machine.
const shutdownRows = 200_000

// TestStoppingDuringALargeApply sends `returnsd run` SIGTERM while it applies
// a large file. Each subtest takes 30-60 s, most of it applying the file.
func TestStoppingDuringALargeApply(t *testing.T) {
	t.Parallel()

	t.Run("WithTimeEnoughTheApplyFinishesAndTheProcessExits0", func(t *testing.T) {
		t.Parallel()
		b := setupShutdown(t)
		d := b.start(t, "2m")
		fileID := b.waitApplying(t, d)
		d.signal(t, syscall.SIGTERM)
		code, took := d.wait(t, 2*time.Minute+30*time.Second)
		t.Logf("exited %d %s after SIGTERM", code, took.Round(time.Millisecond))
		if code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, d.logTail(20))
		}
		if took > 2*time.Minute {
			t.Errorf("exited %s after SIGTERM, past its shutdown_timeout of 2m", took)
		}
		if !strings.Contains(d.log(), `msg=stopped`) {
			t.Errorf("the log does not say it stopped cleanly:\n%s", d.logTail(20))
		}
		b.checkAppliedOnce(t, fileID, "after the stop")

		// The next start answers the file and moves it, and applies nothing again.
		d = b.start(t, "2m")
		b.waitAnswered(t)
		b.checkAppliedOnce(t, fileID, "after the restart")
		b.stop(t, d)
	})

	t.Run("WithTooLittleTimeTheApplyRollsBackAndTheNextStartAppliesIt", func(t *testing.T) {
		t.Parallel()
		b := setupShutdown(t)
		d := b.start(t, "1s")
		fileID := b.waitApplying(t, d)
		d.signal(t, syscall.SIGTERM)
		// The timeout, then the cancelled apply's rollback.
		code, took := d.wait(t, time.Minute)
		t.Logf("exited %d %s after SIGTERM", code, took.Round(time.Millisecond))
		if code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, d.logTail(20))
		}
		if took > 20*time.Second {
			t.Errorf("exited %s after SIGTERM with a shutdown_timeout of 1s", took)
		}
		if !strings.Contains(d.log(), "jobs still running at the shutdown timeout: cancelled") {
			t.Errorf("the log does not say the apply was cancelled:\n%s", d.logTail(20))
		}
		b.waitSessionsGone(t, d)
		b.checkNotApplied(t, fileID)

		d = b.start(t, "2m")
		b.waitAnswered(t)
		b.checkAppliedOnce(t, fileID, "after the restart")
		b.stop(t, d)
	})

	t.Run("ASecondSignalExitsAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setupShutdown(t)
		d := b.start(t, "2m")
		fileID := b.waitApplying(t, d)
		d.signal(t, syscall.SIGTERM)
		time.Sleep(300 * time.Millisecond)
		d.signal(t, syscall.SIGINT)
		code, took := d.wait(t, 30*time.Second)
		t.Logf("exited %d %s after the second signal", code, took.Round(time.Millisecond))
		if code == 0 || code == -1 {
			t.Errorf("exit status %d after a second signal, want a non-zero exit", code)
		}
		if took > 5*time.Second {
			t.Errorf("exited %s after the second signal, want at once", took)
		}
		if !strings.Contains(d.log(), "interrupt again: exiting at once") {
			t.Errorf("the log does not say why it exited:\n%s", d.logTail(20))
		}
		// Nothing half applied: the server rolls back what the process left.
		b.waitSessionsGone(t, d)
		b.checkNotApplied(t, fileID)
	})
}

// shutdownBundle is a database with acme's actions, a drop folder holding
// one large file, and the binary.
type shutdownBundle struct {
	testBundle
	bin     string
	inbox   string
	results string
	sum     [32]byte // the large file's
	runs    int
}

const shutdownFile = "returns_large.csv"

func setupShutdown(t *testing.T) *shutdownBundle {
	t.Helper()
	b := &shutdownBundle{bin: buildReturnsd(t)}
	b.dir = t.TempDir()
	b.inbox, b.results = filepath.Join(b.dir, "inbox"), filepath.Join(b.dir, "results")
	os.Mkdir(b.inbox, 0o755)
	actions := filepath.Join(b.dir, "actions.csv")
	writeFile(t, actions, replicaActionsCSV(time.Now()))
	var requests [][]string
	body := replicaUpdates(rand.New(rand.NewPCG(11, 12)), 1, shutdownRows, &requests)
	b.sum = sha256.Sum256(body)
	p := filepath.Join(b.inbox, shutdownFile)
	writeFile(t, p, body)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)

	b.dbURL = pgtest.NewDatabase(t)
	c := &cli{t: t, env: map[string]string{"DATABASE_URL": b.dbURL, "USER": "tester"}}
	c.mustRun("migrate")
	c.mustRun("import", "actions", "--brand", "acme", actions)
	var err error
	if b.db, err = pgx.Connect(context.Background(), b.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.db.Close(context.Background()) })
	return b
}

// start starts the daemon polling the folder every second, with this
// shutdown_timeout.
func (b *shutdownBundle) start(t *testing.T, shutdownTimeout string) *daemonProc {
	t.Helper()
	b.runs++
	config := writeConfig(t, t.TempDir(),
		"  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:0",
		"shutdown_timeout: 1m", "shutdown_timeout: "+shutdownTimeout)
	appendFile(t, config, fmt.Sprintf(`
spool_dir: %s
sources:
  - {name: drop, brand: acme, type: localdir, path: %s, result_path: %s,
     schedule: "@every 1s", stable_wait: 1s, min_age: 1s}
`, filepath.Join(b.dir, "spool"), b.inbox, b.results))
	return startDaemon(t, b.bin, config, b.dbURL, fmt.Sprintf("returnsd-%d", b.runs))
}

// waitApplying waits until the daemon has been applying the large file for a
// second (its session holds the brand's lock in a transaction begun after
// the file was received) and returns the file's id.
func (b *shutdownBundle) waitApplying(t *testing.T, d *daemonProc) int64 {
	t.Helper()
	var id int64
	eventually(t, 2*time.Minute, "the daemon applies the large file for a second", func() bool {
		return b.db.QueryRow(context.Background(), `
			SELECT f.id FROM received_files f, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE f.sha256 = $1 AND f.status = 'RECEIVED' AND a.application_name = $2
			  AND l.locktype = 'advisory' AND l.classid = x'7265'::int AND l.granted
			  AND a.xact_start > f.received_at AND a.xact_start < now() - interval '1 second'`,
			b.sum[:], d.name).Scan(&id) == nil
	})
	return id
}

// waitSessionsGone waits until the server has ended every session of the
// process: until then what it was doing may still be running there.
func (b *shutdownBundle) waitSessionsGone(t *testing.T, d *daemonProc) {
	t.Helper()
	eventually(t, 2*time.Minute, "the process's database sessions end", func() bool {
		return b.queryInt(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", d.name) == 0
	})
}

// waitAnswered waits until the file's result is in the results folder and
// the file in processed/.
func (b *shutdownBundle) waitAnswered(t *testing.T) {
	t.Helper()
	waitFor(t, 3*time.Minute, "the large file answered and moved", func() string {
		_, errResult := readAnswer(b.results, "result_", shutdownFile)
		_, errMoved := os.Stat(filepath.Join(b.inbox, "processed", shutdownFile))
		if errResult == nil && errMoved == nil {
			return ""
		}
		return fmt.Sprintf("result: %v; moved: %v; files: %v; jobs: %s", errResult, errMoved,
			b.fileStates(t), b.jobStates(t))
	})
}

func (b *shutdownBundle) stop(t *testing.T, d *daemonProc) {
	t.Helper()
	d.signal(t, syscall.SIGTERM)
	if code, took := d.wait(t, time.Minute); code != 0 {
		t.Errorf("exit status %d %s after SIGTERM, want 0", code, took)
	}
}

// checkAppliedOnce checks that the file is COMPLETED, its bytes once, with
// one event per applied row, each of its lines once.
func (b *shutdownBundle) checkAppliedOnce(t *testing.T, fileID int64, when string) {
	t.Helper()
	var completed, applied, total, events, lines int64
	err := b.db.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM received_files WHERE sha256 = $2 AND status = 'COMPLETED'),
			coalesce(rows_applied, 0), coalesce(rows_total, 0),
			(SELECT count(*) FROM ledger_events WHERE file_id = $1),
			(SELECT count(DISTINCT line) FROM ledger_events WHERE file_id = $1)
		FROM received_files WHERE id = $1`, fileID, b.sum[:]).Scan(&completed, &applied, &total, &events, &lines)
	if err != nil {
		t.Fatal(err)
	}
	if completed != 1 || total != shutdownRows || events != applied || lines != events || applied == 0 {
		t.Errorf("%s: %d COMPLETED records of the file, %d of %d rows applied, %d events on %d lines",
			when, completed, applied, total, events, lines)
	}
}

// checkNotApplied checks that the file waits, untouched.
func (b *shutdownBundle) checkNotApplied(t *testing.T, fileID int64) {
	t.Helper()
	if n := b.queryInt(t, "SELECT count(*) FROM received_files WHERE id = $1 AND status = 'RECEIVED'", fileID); n != 1 {
		t.Errorf("the file is no longer RECEIVED: %v", b.fileStates(t))
	}
	if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE file_id = $1", fileID); n != 0 {
		t.Errorf("%d events of the file that was not applied", n)
	}
	if n := b.queryInt(t, "SELECT count(*) FROM file_rows WHERE file_id = $1", fileID); n != 0 {
		t.Errorf("%d row outcomes of the file that was not applied", n)
	}
}

func (b *shutdownBundle) fileStates(t *testing.T) map[string]int {
	t.Helper()
	return (&crashDB{testBundle: b.testBundle}).fileStates(t)
}
