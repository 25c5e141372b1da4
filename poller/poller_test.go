package poller_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	"github.com/returnsd/returnsd/poller"
	"github.com/returnsd/returnsd/processors"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestTwoJobsApplyingOneFileReportItOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	cfg, err := config.Load(bytes.NewReader(returnsd.ExampleConfig), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBrands(ctx, ledger.BrandsFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := &pipeline.Pipeline{Ledger: l, SpoolDir: filepath.Join(dir, "spool")}
	acme, _ := cfg.Brand("acme")
	write := func(name, fixture string) string {
		data, _ := returnsd.Fixtures.ReadFile("fixtures/" + fixture)
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	if _, err := files.Process(ctx, pipeline.Params{Brand: "acme", Format: pipeline.ExportFormat(acme), Source: "cli",
		Actor: "cli:test", Path: write("actions.csv", "acme_actions.csv"), Kind: processors.Actions}); err != nil {
		t.Fatal(err)
	}
	rec, err := files.Receive(ctx, pipeline.ReceiveParams{Brand: "acme", Source: "drop", Name: "returns.csv",
		Path: write("returns.csv", "acme_returns.csv")})
	if err != nil || rec.Status != outcome.Received {
		t.Fatalf("receive: %+v %v", rec, err)
	}

	// Hold acme's lock so that both jobs wait for it, as two replicas' would.
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock(29285, (SELECT id::int FROM brands WHERE slug = 'acme'))"); err != nil {
		t.Fatal(err)
	}
	p := &poller.Poller{Ledger: l, Files: files, Config: cfg}
	var wg sync.WaitGroup
	applied := make([][]poller.Applied, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = p.ApplyWaiting(ctx, rec.FileID)
		}()
	}
	time.Sleep(300 * time.Millisecond) // both reach the lock
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock(29285, (SELECT id::int FROM brands WHERE slug = 'acme'))"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the jobs did not finish within 60 s")
	}
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors %v", errs)
	}
	if n := len(applied[0]) + len(applied[1]); n != 1 {
		t.Errorf("the file was reported applied %d times; want once: %+v", n, applied)
	}
}
