package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// appName names the pipeline's database sessions, so a test can find them in pg_stat_activity.
const appName = "pipeline-under-test"

type testBundle struct {
	cfg    *config.Config
	ledger *ledger.Ledger
	url    string
	db     *pgx.Conn // the test's own session
	dir    string    // a folder for the test's files
	format processors.Format
	log    *syncBuffer // what the pipeline logged
}

// setup gives a test a pipeline on a migrated database holding acme's fixture actions.
func setup(t *testing.T) (*pipeline.Pipeline, *testBundle) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	cfg, err := config.Load(bytes.NewReader(returnsd.ExampleConfig), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	acme, err := cfg.Brand("acme")
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(log, nil))
	l, err := ledger.Open(ctx, url+"&application_name="+appName, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBrands(ctx, ledger.BrandsFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })

	b := &testBundle{cfg: cfg, ledger: l, url: url, db: db, dir: t.TempDir(), format: pipeline.Format(acme), log: log}
	p := &pipeline.Pipeline{Ledger: l, RetryWait: 20 * time.Millisecond, Logger: logger}
	res, err := p.Process(ctx, b.params(b.fixture(t, "acme_actions.csv"), processors.Actions))
	if err != nil || res.Status != outcome.Completed || res.Summary.Applied != 10 {
		t.Fatalf("import fixture actions: %+v, %v", res, err)
	}
	return p, b
}

// cfgBrand is a brand of the example config.
func (b *testBundle) cfgBrand(t *testing.T, id string) *config.Brand {
	t.Helper()
	brand, err := b.cfg.Brand(id)
	if err != nil {
		t.Fatal(err)
	}
	return brand
}

// params are the Params of a CLI apply of the file at path.
func (b *testBundle) params(path string, kind processors.Kind) pipeline.Params {
	return pipeline.Params{Brand: "acme", Format: b.format, Source: "test", Actor: "test", Path: path, Kind: kind}
}

// fixture copies a fixture file into the test's folder.
func (b *testBundle) fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := returnsd.Fixtures.ReadFile("fixtures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b.write(t, name, data)
}

func (b *testBundle) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// resultFile is a result file for the pipeline to write, in the test's folder.
type resultFile struct{ *os.File }

func (b *testBundle) result(t *testing.T) *resultFile {
	t.Helper()
	f, err := os.CreateTemp(b.dir, "result-*.csv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &resultFile{f}
}

// String is what the pipeline wrote.
func (r *resultFile) String() string {
	data, err := os.ReadFile(r.Name())
	if err != nil {
		panic(err)
	}
	return string(data)
}

func (r *resultFile) Len() int { return len(r.String()) }

func (b *testBundle) queryInt(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// actions is the ledger's state of acme's actions, as the export shows it.
func (b *testBundle) actions(t *testing.T) string {
	t.Helper()
	var s strings.Builder
	err := b.ledger.ExportActions(context.Background(), "acme", func(a ledger.Action) error {
		fmt.Fprintf(&s, "%d %s %s %s %d\n", a.ID, a.State, a.Amount, a.Payout, a.ModificationCount)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.String()
}

// wantReturnsApplied checks the summary of fixtures/acme_returns.csv applied to the fixture actions.
func wantReturnsApplied(t *testing.T, res pipeline.Result) {
	t.Helper()
	s := res.Summary
	if res.Status != outcome.Completed || res.Kind != processors.ActionUpdates ||
		s.Rows != 12 || s.Applied != 4 || s.Rejected != 6 || s.Duplicate != 2 {
		t.Errorf("result %+v, want COMPLETED action-updates with 12 rows: 4 applied, 6 rejected, 2 duplicate", res)
	}
}

func TestProcess(t *testing.T) {
	t.Parallel()

	t.Run("ADatabaseSessionKilledMidApplyIsRetriedAndTheFileAppliedOnce", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		ctx := context.Background()
		path := b.fixture(t, "acme_returns.csv")
		before := b.actions(t)

		// Another session holds action 5001, which the file reverses: the apply waits for it.
		// (Its own connection: pg_stat_activity is a snapshot for the rest of a transaction.)
		other, err := pgx.Connect(ctx, b.url)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(ctx)
		holder, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback(ctx)
		if _, err := holder.Exec(ctx, "SELECT 1 FROM actions WHERE id = 5001 FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		var (
			res  pipeline.Result
			perr error
			done = make(chan struct{})
		)
		go func() {
			defer close(done)
			res, perr = p.Process(ctx, b.params(path, ""))
		}()

		// The database goes away under the waiting apply: its session is terminated.
		first := waitForBlockedSession(t, b, 0)
		if _, err := b.db.Exec(ctx, "SELECT pg_terminate_backend($1)", first); err != nil {
			t.Fatal(err)
		}
		// The retry gets as far again, in a new session.
		second := waitForBlockedSession(t, b, first)
		// In between, the first attempt left nothing but the received file.
		if n := b.queryInt(t, "SELECT count(*) FROM received_files WHERE name = 'acme_returns.csv'"); n != 1 {
			t.Errorf("%d records of the file while it is retried, want the one it was received as", n)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM row_outcomes WHERE file_id = 2"); n != 0 {
			t.Errorf("the killed attempt left %d row outcomes", n)
		}
		if err := holder.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		<-done

		if perr != nil {
			t.Fatalf("Process: %v", perr)
		}
		wantReturnsApplied(t, res)
		if !strings.Contains(b.log.String(), "transient failure; retrying") {
			t.Errorf("no retry was logged:\n%s", b.log.String())
		}
		if res.FileID != 2 || b.queryInt(t, "SELECT count(*) FROM received_files") != 2 {
			t.Errorf("file id %d; the retry should apply the file received the first time (2), not receive it again", res.FileID)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE file_id = 2"); n != 4 {
			t.Errorf("%d ledger events from the file, want its 4 applied rows once", n)
		}
		if after := b.actions(t); after == before {
			t.Errorf("the file changed nothing")
		}
		t.Logf("sessions %d (terminated) and %d (retry)", first, second)
	})

	t.Run("AResolutionFileWhoseSessionIsKilledIsRetriedAndAppliedOnce", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		ctx := context.Background()
		res, err := p.Process(ctx, b.params(b.fixture(t, "acme_inquiries.csv"), processors.Inquiries))
		if err != nil || res.Summary.Applied != 4 {
			t.Fatalf("import inquiries: %+v, %v", res, err)
		}
		// Another session holds INQ-9001, which the file resolves VALID (and pays at once).
		other, err := pgx.Connect(ctx, b.url)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(ctx)
		holder, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback(ctx)
		if _, err := holder.Exec(ctx, "SELECT 1 FROM inquiries WHERE inquiry_id = 'INQ-9001' FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		var perr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, perr = p.Process(ctx, b.params(b.fixture(t, "acme_resolutions.csv"), ""))
		}()
		first := waitForBlockedSession(t, b, 0)
		if _, err := b.db.Exec(ctx, "SELECT pg_terminate_backend($1)", first); err != nil {
			t.Fatal(err)
		}
		waitForBlockedSession(t, b, first)
		if n := b.queryInt(t, "SELECT count(*) FROM actions WHERE id >= 900000000000000"); n != 0 {
			t.Errorf("the killed attempt left %d actions", n)
		}
		if err := holder.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		<-done
		if perr != nil {
			t.Fatalf("Process: %v", perr)
		}
		if s := res.Summary; res.Kind != processors.InquiryResolutions || s.Applied != 4 || s.Rejected != 1 || s.Duplicate != 1 {
			t.Errorf("result %+v", res)
		}
		// Each VALID row created one action, once; the old one was locked and paid once.
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE kind = 'CREATE' AND reason = 'INQUIRY_VALID'"); n != 2 {
			t.Errorf("%d actions created, want 2", n)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE kind = 'PAY'"); n != 1 {
			t.Errorf("%d payouts, want 1", n)
		}
		if n := b.queryInt(t, "SELECT (balance * 100)::bigint FROM brands WHERE slug = 'acme'"); n != -1700 {
			t.Errorf("balance %d cents, want -17.00", n)
		}
	})

	t.Run("AFileReceivedButNotAppliedIsPickedUpAndAppliedOnce", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		ctx := context.Background()
		path := b.fixture(t, "acme_returns.csv")
		data, _ := os.ReadFile(path)
		sum := sha256.Sum256(data)
		// As a crash after receiving leaves it.
		rec, err := b.ledger.Receive(ctx, ledger.ReceiveParams{Brand: "acme", Source: "test", Name: "acme_returns.csv",
			Size: int64(len(data)), SHA256: sum[:], Body: bytes.NewReader(data)})
		if err != nil || rec.Status != outcome.Received {
			t.Fatalf("Receive: %+v, %v", rec, err)
		}

		result := b.result(t)
		params := b.params(path, "")
		params.Result = result
		res, err := p.Process(ctx, params)

		if err != nil {
			t.Fatal(err)
		}
		wantReturnsApplied(t, res)
		if res.FileID != rec.FileID {
			t.Errorf("applied as file %d, want the received file %d", res.FileID, rec.FileID)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM received_files WHERE sha256 = $1", sum[:]); n != 1 {
			t.Errorf("%d records of the bytes, want 1", n)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM received_file_chunks WHERE file_id = $1", rec.FileID); n != 1 {
			t.Errorf("%d chunks kept, want the one stored when it was received", n)
		}
		if lines := strings.Count(result.String(), "\r\n"); lines != 13 {
			t.Errorf("result file of %d lines, want a header and 12 rows:\n%s", lines, result.String())
		}

		// And once applied, the same bytes again are a duplicate.
		again, err := p.Process(ctx, b.params(path, ""))
		if err != nil || again.Status != outcome.DuplicateFile || again.DuplicateOf != rec.FileID {
			t.Errorf("the same bytes again: %+v, %v; want DUPLICATE_FILE of %d", again, err, rec.FileID)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE file_id IS NOT NULL AND file_id <> 1"); n != 4 {
			t.Errorf("%d ledger events from the file, want its 4 applied rows once", n)
		}
	})

	t.Run("AFieldTooLargeDeepInAValidFileQuarantinesItWithNothingApplied", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		ctx := context.Background()
		var data bytes.Buffer
		data.WriteString("ActionId,Amount,Reason,Note\n")
		for line := 2; line < 3000; line++ {
			id := 5001 + line%10
			fmt.Fprintf(&data, "%d,%d.00,ORDER_UPDATE,line %d\n", id, line%500, line)
		}
		data.WriteString(`5001,1.00,ORDER_UPDATE,"` + strings.Repeat("x", 10<<20) + "\"\n") // line 3000
		data.WriteString("5002,2.00,ORDER_UPDATE,after\n")
		path := b.write(t, "deep.csv", data.Bytes())
		before := b.actions(t)
		events := b.queryInt(t, "SELECT count(*) FROM ledger_events")

		result := b.result(t)
		params := b.params(path, "")
		params.Result = result
		res, err := p.Process(ctx, params)

		if err != nil {
			t.Fatal(err)
		}
		if res.Status != outcome.Quarantined || res.Code != outcome.FieldTooLarge || !strings.Contains(res.Reason, "3000") {
			t.Errorf("result %+v, want QUARANTINED FIELD_TOO_LARGE naming line 3000", res)
		}
		var status, code string
		if err := b.db.QueryRow(ctx, "SELECT status, reason_code FROM received_files WHERE id = $1", res.FileID).Scan(&status, &code); err != nil {
			t.Fatal(err)
		}
		if status != "QUARANTINED" || code != "FIELD_TOO_LARGE" {
			t.Errorf("received file %s %s", status, code)
		}
		if after := b.actions(t); after != before {
			t.Errorf("the rows before line 3000 were applied:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events"); n != events {
			t.Errorf("%d ledger events, want %d as before", n, events)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM row_outcomes WHERE file_id = $1", res.FileID); n != 0 {
			t.Errorf("%d row outcomes for a quarantined file", n)
		}
		if result.Len() != 0 {
			t.Errorf("a result file was written for a quarantined file:\n%.300s", result.String())
		}
		h := sha256.New()
		if err := b.ledger.FileBytes(ctx, res.FileID, h); err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(data.Bytes()); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("the ledger does not keep the quarantined file's bytes")
		}
	})

	t.Run("AResultFileIsNeverProcessed", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		path := b.fixture(t, "acme_returns.csv")
		for _, name := range []string{"result_acme_returns.csv", "RECEIPT_x.csv", "in/result_.zip"} {
			params := b.params(path, "")
			params.Name = name
			_, err := p.Process(context.Background(), params)
			if err == nil || !strings.Contains(err.Error(), "is a returnsd result file") {
				t.Errorf("Process(%s): %v, want refused as ours", name, err)
			}
		}
		if n := b.queryInt(t, "SELECT count(*) FROM received_files"); n != 1 {
			t.Errorf("result files were recorded as received")
		}
	})

	t.Run("ADryRunReportsTheOutcomesAndRecordsNothing", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		path := b.fixture(t, "acme_returns.csv")
		before := b.actions(t)
		result := b.result(t)
		params := b.params(path, "")
		params.DryRun, params.Result = true, result

		res, err := p.Process(context.Background(), params)

		if err != nil {
			t.Fatal(err)
		}
		wantReturnsApplied(t, res)
		if res.FileID != 0 {
			t.Errorf("a dry run has file id %d", res.FileID)
		}
		if strings.Count(result.String(), "\r\n") != 13 {
			t.Errorf("result:\n%s", result.String())
		}
		if after := b.actions(t); after != before {
			t.Errorf("a dry run changed the ledger")
		}
		if n := b.queryInt(t, "SELECT count(*) FROM received_files"); n != 1 {
			t.Errorf("a dry run recorded a received file")
		}
	})
}

// waitForBlockedSession waits until a session of the pipeline other than
// `except` waits for a lock, and returns its pid.
func waitForBlockedSession(t *testing.T, b *testBundle, except int32) int32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pid int32
		err := b.db.QueryRow(context.Background(), `
			SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database() AND wait_event_type = 'Lock' AND pid <> $2
			LIMIT 1`, appName, except).Scan(&pid)
		if err == nil {
			return pid
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session of the pipeline waits for the held lock; the pipeline logged:\n%s", b.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
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

func TestFormatCopiesAliases(t *testing.T) {
	t.Parallel()
	b := &config.Brand{Timezone: "UTC"}
	b.FileFormat.Aliases = map[string]string{"Bestellnummer": "Oid"}
	f := pipeline.Format(b)
	f.Aliases["x"] = "y"
	if len(b.FileFormat.Aliases) != 1 {
		t.Error("Format shares the aliases map with the Config")
	}
}
