package poller_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/poller"
)

func TestAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := config.Load(bytes.NewReader(returnsd.ExampleConfig), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ctx, pgtest.NewDatabase(t), nil)
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
	path := filepath.Join(dir, "returns.csv")
	os.WriteFile(path, []byte("ActionId,Reason\n5001,RETURNED\n"), 0o644)
	rec, err := files.Receive(ctx, pipeline.ReceiveParams{Brand: "acme", Source: "gone", Name: "returns.csv", Path: path})
	if err != nil || rec.Status != outcome.Received {
		t.Fatalf("receive: %+v %v", rec, err)
	}
	opened := 0
	p := &poller.Poller{Ledger: l, Files: files, Config: cfg, SpoolDir: dir,
		OpenSource: func(*config.Source) (ingest.Source, error) { opened++; return nil, errors.New("not here") }}

	if err := p.Answer(ctx, rec.FileID); !errors.Is(err, poller.ErrNotFinished) {
		t.Errorf("a file not applied yet: %v", err)
	}
	if _, err := p.ApplyWaiting(ctx, rec.FileID); err != nil {
		t.Fatal(err)
	}
	if err := p.Answer(ctx, rec.FileID); !errors.Is(err, poller.ErrSourceGone) || opened != 0 {
		t.Errorf("a file whose source is gone: %v (opened %d)", err, opened)
	}
	if _, err := p.Reprocess(ctx, rec.FileID, " "); err == nil {
		t.Error("a reprocess nobody asked for")
	}
	if _, err := p.RetryRejected(ctx, rec.FileID, ""); err == nil {
		t.Error("a retry nobody asked for")
	}
}
