package main

// ---- Paired runs on copies of one ledger (issue 13) --------------------------
//
// A time on this shared 2-core machine means little alone: the load of the
// moment moves it by a third. Every comparison here is therefore paired: the
// two sides run on fresh copies of vacuumed, analyzed base databases
// (CREATE DATABASE ... TEMPLATE, untimed), one right after the other, and the
// side that goes first alternates from run to run. Each figure is the median
// of the runs.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// env is what every phase runs with: the binary under test, a scratch
// directory, and the server (its URL and a connection to its postgres database).
type env struct {
	bin       string
	dir       string
	cfg       string // the example config at debug level: the apply logs the time of each step
	serverURL string
	admin     *pgx.Conn
}

// url is the URL of the server's database db.
func (e *env) url(db string) string {
	return strings.Replace(e.serverURL, "/postgres?", "/"+db+"?", 1)
}

// copyDB creates db as a copy of template, file by file (the default WAL_LOG
// strategy writes a multi-gigabyte ledger through the WAL, several times slower).
func (e *env) copyDB(ctx context.Context, db, template string) error {
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE "+template+" STRATEGY FILE_COPY"); err != nil {
		return fmt.Errorf("copy %s to %s: %w", template, db, err)
	}
	return nil
}

func (e *env) dropDB(ctx context.Context, db string) error {
	if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return fmt.Errorf("drop %s: %w", db, err)
	}
	return nil
}

// checkpoint writes out what earlier work left dirty, so that no measurement
// pays for the writes of the one before it.
func (e *env) checkpoint(ctx context.Context) error {
	_, err := e.admin.Exec(ctx, "CHECKPOINT")
	return err
}

// side is one half of a paired run: what it runs on and what it times.
type side struct {
	name     string // the copy's database name
	template string // the base it is a copy of
	// run does the timed work on the copy at url and returns its time.
	run func(ctx context.Context, url string) (time.Duration, error)
}

// pairedRuns runs a and b n times, each time on fresh copies of their bases
// made before either starts, a first in the odd runs and b first in the even
// ones, with a checkpoint before each. check, when not nil, compares the two
// copies after both ran. It returns each side's times in run order.
func pairedRuns(ctx context.Context, e *env, n int, a, b side,
	check func(ctx context.Context, urlA, urlB string) error) ([]time.Duration, []time.Duration, error) {
	var ta, tb []time.Duration
	for i := 0; i < n; i++ {
		for _, s := range []side{a, b} {
			if err := e.dropDB(ctx, s.name); err != nil {
				return nil, nil, err
			}
			if err := e.copyDB(ctx, s.name, s.template); err != nil {
				return nil, nil, err
			}
		}
		order := []*side{&a, &b}
		if i%2 == 1 {
			order = []*side{&b, &a}
		}
		took := map[*side]time.Duration{}
		for _, s := range order {
			if err := e.checkpoint(ctx); err != nil {
				return nil, nil, err
			}
			t, err := s.run(ctx, e.url(s.name))
			if err != nil {
				return nil, nil, err
			}
			took[s] = t
		}
		ta, tb = append(ta, took[&a]), append(tb, took[&b])
		if check != nil {
			if err := check(ctx, e.url(a.name), e.url(b.name)); err != nil {
				return nil, nil, err
			}
		}
		for _, s := range []side{a, b} {
			if err := e.dropDB(ctx, s.name); err != nil {
				return nil, nil, err
			}
		}
	}
	return ta, tb, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// secs lists times as "1.23 s, 1.31 s, 1.19 s".
func secs(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f s", d.Seconds())
	}
	return strings.Join(parts, ", ")
}

// runsNote says what a figure is the median of ("median of 3 paired runs"),
// or that it is a single run.
func runsNote(n int, runs string) string {
	if n == 1 {
		return "one run"
	}
	return fmt.Sprintf("median of %d %s", n, runs)
}

// loadAverage is the machine's 1-minute load average as /proc/loadavg gives it,
// printed with each phase: on this shared machine it says what a figure is worth.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// ---- The floor ----------------------------------------------------------------
//
// The floor is what the issue compares the apply with: COPY plus one
// hand-written set-based statement making the same state change. The changes
// are read, untimed, from the ledger events an apply wrote (fileChanges); the
// floor then COPYs them into a staging table and runs the statement, both
// timed. The staging table is analyzed between the two, untimed: statistics
// given to the floor for free only make it lower, never flatter the apply.

// fileChanges reads, as COPY text, the state changes the update file applied
// on the ledger at url made: one row per ledger event of the file.
func fileChanges(ctx context.Context, url string) ([]byte, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var buf bytes.Buffer
	_, err = conn.PgConn().CopyTo(ctx, &buf, `COPY (SELECT e.line, e.action_id, e.kind, e.reason, e.new_state, e.new_amount, e.new_payout
		FROM ledger_events e JOIN received_files f ON f.id = e.file_id WHERE f.kind = 'action-updates') TO STDOUT`)
	if err != nil {
		return nil, fmt.Errorf("read the apply's changes: %w", err)
	}
	return buf.Bytes(), nil
}

// measureFloor makes the changes on the ledger at url the floor's way and
// returns the time of the COPY plus the statement: it updates the actions and
// writes one ledger event per row.
func measureFloor(ctx context.Context, url string, changes []byte) (time.Duration, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var file int64
	err = conn.QueryRow(ctx, `INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept)
		SELECT id, 'floor', 'floor', 0, '\x00', 'RECEIVED', false FROM brands WHERE slug = 'acme' RETURNING id`).Scan(&file)
	if err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `CREATE UNLOGGED TABLE changes (line int, action_id bigint, kind text, reason text,
		new_state text, new_amount numeric(14,2), new_payout numeric(14,2))`); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(changes), "COPY changes FROM STDIN"); err != nil {
		return 0, fmt.Errorf("floor: copy: %w", err)
	}
	copied := time.Since(start)
	if _, err := conn.Exec(ctx, "ANALYZE changes"); err != nil {
		return 0, err
	}
	start = time.Now()
	_, err = conn.Exec(ctx, `
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
	if err != nil {
		return 0, fmt.Errorf("floor: statement: %w", err)
	}
	return copied + time.Since(start), nil
}

// sameActions checks that the ledgers at a and b hold the same actions with ids
// from lo to hi in the same state: that two runs made exactly the same change.
func sameActions(ctx context.Context, a, b string, lo, hi int64) error {
	sum := func(url string) (string, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		var s string
		err = conn.QueryRow(ctx, `SELECT md5(string_agg(id || state || amount || payout || modification_count, ',' ORDER BY id))
			FROM actions WHERE id BETWEEN $1 AND $2`, lo, hi).Scan(&s)
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
		return fmt.Errorf("the actions differ after the two runs (%s vs %s): the comparison is not fair", x, y)
	}
	return nil
}
