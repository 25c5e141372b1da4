package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/daemon"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testBundle is one test's database, folders and config.
type testBundle struct {
	url     string
	dir     string
	inbox   string
	results string
	cfg     *config.Config
	db      *pgx.Conn
	log     *syncBuffer
}

// setup gives a test a migrated database holding acme's fixture actions and a
// config with one localdir source polled every second.
func setup(t *testing.T, extra string) *testBundle {
	t.Helper()
	return setupEdited(t, nil, extra)
}

// setupEdited is setup with the example config edited first: each pair of
// edits is a text of it and what replaces it.
func setupEdited(t *testing.T, edits []string, extra string) *testBundle {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{url: pgtest.NewDatabase(t), dir: t.TempDir(), log: &syncBuffer{}}
	b.inbox, b.results = filepath.Join(b.dir, "inbox"), filepath.Join(b.dir, "results")
	os.MkdirAll(b.inbox, 0o755)
	yaml := string(returnsd.ExampleConfig)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(yaml, edits[i]) {
			t.Fatalf("the example config has no %q", edits[i])
		}
		yaml = strings.Replace(yaml, edits[i], edits[i+1], 1)
	}
	for from, to := range map[string]string{
		"log:\n  level: info\n":    "log:\n  level: debug\n",
		"  listen: 127.0.0.1:8080": "  listen: 127.0.0.1:0",
		"shutdown_timeout: 1m":     "shutdown_timeout: 20s",
	} {
		if !strings.Contains(yaml, from) {
			t.Fatalf("the example config has no %q", from)
		}
		yaml = strings.Replace(yaml, from, to, 1)
	}
	yaml += `
sources:
  - {name: drop, brand: acme, type: localdir, path: ` + b.inbox + `, result_path: ` + b.results + `,
     schedule: "@every 1s", stable_wait: 1s, min_age: 1s}
spool_dir: ` + filepath.Join(b.dir, "spool") + `
` + extra
	cfg, err := config.Load(strings.NewReader(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = cfg
	l := b.open(t)
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBrands(ctx, ledger.BrandsFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	data, _ := returnsd.Fixtures.ReadFile("fixtures/acme_actions.csv")
	actions := filepath.Join(b.dir, "acme_actions.csv")
	os.WriteFile(actions, data, 0o644)
	acme, _ := cfg.Brand("acme")
	p := &pipeline.Pipeline{Ledger: l}
	if _, err := p.Process(ctx, pipeline.Params{Brand: "acme", Format: pipeline.Format(acme), Source: "cli",
		Actor: "cli:test", Path: actions, Kind: processors.Actions}); err != nil {
		t.Fatal(err)
	}
	if b.db, err = pgx.Connect(ctx, b.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.db.Close(context.Background()) })
	return b
}

func (b *testBundle) open(t *testing.T) *ledger.Ledger {
	t.Helper()
	l, err := ledger.OpenPool(context.Background(), b.url, nil, daemon.Connections(b.cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// fixtureDay is the daemon's clock in these tests: the lifecycle runs as on
// the day the fixtures were written, so it locks none of their actions before
// the test's file is applied, whatever the day the test runs.
func fixtureDay() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }

// replica is a daemon running in the test's process.
type replica struct {
	*daemon.Daemon
	addr    string
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func (b *testBundle) start(t *testing.T) *replica {
	t.Helper()
	l := b.open(t)
	ready := make(chan string, 1)
	d, err := daemon.New(daemon.Params{Config: b.cfg, Ledger: l, Now: fixtureDay,
		Logger: slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Ready:  func(addr string) { ready <- addr }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{Daemon: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	select {
	case r.addr = <-ready:
	case err := <-r.done:
		t.Fatalf("the daemon stopped at once: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not start within 30 s")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop stops the replica as SIGTERM would and waits for it; once stopped,
// it does nothing.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("the daemon stopped with %v", err)
		}
		close(r.done)
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop within 60 s")
	}
}

func (b *testBundle) put(t *testing.T, name, body string) {
	t.Helper()
	p := filepath.Join(b.inbox, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
}

// eventually waits until cond holds, failing with what after deadline.
func eventually(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, deadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *testBundle) queryInt(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestTheDaemon(t *testing.T) {
	t.Parallel()

	t.Run("PollsAppliesAndAnswersAFileOnItsSchedule", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		// The lifecycle run the new leader makes up at start pays action
		// 5006 (locked since October) if it comes before the scrape below:
		// funds keep acme's balance from going negative either way.
		funds, _ := money.Parse("1000.00", false)
		if _, err := b.open(t).Deposit(context.Background(), "acme", funds, "test"); err != nil {
			t.Fatal(err)
		}
		r := b.start(t)
		data, _ := returnsd.Fixtures.ReadFile("fixtures/acme_returns.csv")
		b.put(t, "returns.csv", string(data))

		var result string
		eventually(t, 60*time.Second, "the result file is uploaded", func() bool {
			found, _ := filepath.Glob(filepath.Join(b.results, "result_returns_*.csv"))
			if len(found) == 1 {
				result = found[0]
			}
			return result != ""
		})
		eventually(t, 30*time.Second, "the file is moved to processed/", func() bool {
			_, err := os.Stat(filepath.Join(b.inbox, "processed", "returns.csv"))
			return err == nil
		})
		got, _ := os.ReadFile(result)
		if strings.Count(string(got), "\r\n") != 13 || !strings.Contains(string(got), "APPLIED") {
			t.Errorf("result file:\n%s", got)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE actor = 'source:drop'"); n != 4 {
			t.Errorf("%d events from the file, want its 4 applied rows", n)
		}

		if code, body := get(t, "http://"+r.addr+"/healthz"); code != 200 {
			t.Errorf("/healthz: %d %s", code, body)
		}
		if code, body := get(t, "http://"+r.addr+"/readyz"); code != 200 || !strings.Contains(body, `"ready": true`) {
			t.Errorf("/readyz: %d %s", code, body)
		}
		code, body := get(t, "http://"+r.addr+"/metrics")
		for _, want := range []string{
			`returnsd_files_total{status="COMPLETED"} 1`,
			`returnsd_rows_total{code="",outcome="APPLIED"} 4`,
			`returnsd_rows_total{code="ACTION_LOCKED",outcome="REJECTED"} 1`,
			`returnsd_polls_total{source="drop"}`,
			`returnsd_source_last_success_timestamp_seconds{source="drop"}`,
			`returnsd_source_backed_off{source="drop"} 0`,
			`returnsd_apply_duration_seconds_count 1`,
			`returnsd_brand_negative_balance{brand="acme"} `, // 0 or 1: the lifecycle may have paid at start
			`returnsd_metrics_database_error 0`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics (%d) lacks %q", code, want)
			}
		}
		// The ops pages share the listener, behind their sign-in; the job
		// queue's UI too.
		for _, path := range []string{"/", "/day", "/files/1", "/jobs/"} {
			if code, body := get(t, "http://"+r.addr+path); code != 200 || !strings.Contains(body, "Sign in") ||
				strings.Contains(body, "returns.csv") {
				t.Errorf("%s signed out: %d\n%.500s", path, code, body)
			}
		}
		if !strings.Contains(b.log.String(), "source=drop") || !strings.Contains(b.log.String(), "job=apply_file") {
			t.Errorf("the log does not name the source and the job:\n%.3000s", b.log.String())
		}
	})
}

func TestAJobOfAReplicaThatDied(t *testing.T) {
	t.Parallel()

	t.Run("IsRunAgainByAnotherAfterRescueAfter", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := setup(t, "queue: {rescue_after: 2s}\n")
		// A file received, and its apply job taken by a replica that died
		// an hour ago: the job stays running until the queue rescues it,
		// and no poll can enqueue the file again meanwhile (the job is unique).
		l := b.open(t)
		inserter, err := river.NewClient(riverpgxv5.New(l.Pool()), &river.Config{})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := returnsd.Fixtures.ReadFile("fixtures/acme_returns.csv")
		spool := filepath.Join(b.dir, "returns.csv")
		os.WriteFile(spool, data, 0o644)
		p := &pipeline.Pipeline{Ledger: l}
		res, err := p.Receive(ctx, pipeline.ReceiveParams{Brand: "acme", Source: "drop", Name: "returns.csv", Path: spool,
			Then: func(ctx context.Context, tx pgx.Tx, r ledger.Received) error {
				_, err := inserter.InsertTx(ctx, tx, daemon.ApplyArgs{FileID: r.FileID}, nil)
				return err
			}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1,
			attempted_at = now() - interval '1 hour', attempted_by = ARRAY['a-replica-that-died']`); err != nil {
			t.Fatal(err)
		}

		b.start(t)
		eventually(t, 90*time.Second, "the file applied by the rescued job", func() bool {
			return b.queryInt(t, "SELECT count(*) FROM received_files WHERE id = $1 AND status = 'COMPLETED'", res.FileID) == 1
		})
		eventually(t, 30*time.Second, "the rescued job completed", func() bool {
			return b.queryInt(t, "SELECT count(*) FROM river_job WHERE kind = 'apply_file' AND state = 'completed' AND attempt = 2") == 1
		})
	})
}

func TestPollsOfManySources(t *testing.T) {
	t.Parallel()

	t.Run("StartedTogetherDoNotWaitForEachOthersConnections", func(t *testing.T) {
		t.Parallel()
		// Every poll worker busy at once: each poll keeps its source's lock on
		// one connection and needs another for its work. With pgxpool's
		// default of max(4, CPUs) connections, four polls on a small machine
		// took them all and waited on each other for ever.
		b := setup(t, "queue: {poll_workers: 4}\n")
		data, _ := returnsd.Fixtures.ReadFile("fixtures/acme_returns.csv")
		const sources = 8
		for i := range sources {
			dir := filepath.Join(b.dir, fmt.Sprintf("inbox%d", i))
			s := b.cfg.Sources[0]
			s.Name, s.Path, s.ResultPath = fmt.Sprintf("drop%d", i), dir, dir
			b.cfg.Sources = append(b.cfg.Sources, s)
			os.MkdirAll(dir, 0o755)
			// The same file in every folder: the first applied, the others duplicates.
			p := filepath.Join(dir, "returns.csv")
			os.WriteFile(p, data, 0o644)
			old := time.Now().Add(-time.Hour)
			os.Chtimes(p, old, old)
		}
		b.start(t)
		eventually(t, 90*time.Second, "every source's file answered", func() bool {
			return b.queryInt(t, "SELECT count(*) FROM source_files WHERE state = 'ACKED'") == sources
		})
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE actor LIKE 'source:%'"); n != 4 {
			t.Errorf("%d events from the files, want the 4 applied rows of the first one", n)
		}
	})

	t.Run("NeedAPoolThatHoldsThem", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		url := b.url + "?pool_max_conns=5"
		if strings.Contains(b.url, "?") {
			url = b.url + "&pool_max_conns=5"
		}
		l, err := ledger.Open(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = daemon.New(daemon.Params{Config: b.cfg, Ledger: l})
		if err == nil || !strings.Contains(err.Error(), "pool_max_conns") {
			t.Errorf("a replica on a pool of 5 connections started (%v); it needs %d", err, daemon.Connections(b.cfg))
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
