package poller_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// staleLedger lists the files waiting as they were a moment ago: as a
// replica sees them that listed them and then waited for the brand's lock
// while another replica applied them.
type staleLedger struct {
	*ledger.Ledger
	waiting []ledger.ReceivedFile
}

func (s staleLedger) WaitingFiles(context.Context, int64) ([]ledger.ReceivedFile, error) {
	return s.waiting, nil
}

func TestApplyWaiting(t *testing.T) {
	t.Parallel()

	for name, file := range map[string]string{
		"AFileAppliedByAnotherMeanwhileIsNotAppliedHere":     "fixtures/acme_returns.csv",
		"AFileQuarantinedByAnotherMeanwhileIsNotCountedHere": "",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg, l, pipe := setup(t)
			body := []byte("Menge;Grund\r\n1;2\r\n") // no kind has these columns
			if file != "" {
				body, _ = returnsd.Fixtures.ReadFile(file)
			}
			spool := filepath.Join(t.TempDir(), "returns.csv")
			os.WriteFile(spool, body, 0o644)
			res, err := pipe.Receive(ctx, pipeline.ReceiveParams{Brand: "acme", Source: "drop", Name: "returns.csv", Path: spool})
			if err != nil {
				t.Fatal(err)
			}
			seen, err := l.WaitingFiles(ctx, res.FileID)
			if err != nil || len(seen) != 1 {
				t.Fatalf("waiting files %v (%v), want the file received", seen, err)
			}

			first := &poller.Poller{Ledger: l, Files: pipe, Config: cfg}
			applied, err := first.ApplyWaiting(ctx, res.FileID)
			if err != nil || len(applied) != 1 {
				t.Fatalf("the first replica applied %d files (%v), want the one", len(applied), err)
			}
			second := &poller.Poller{Ledger: staleLedger{Ledger: l, waiting: seen}, Files: pipe, Config: cfg}
			applied, err = second.ApplyWaiting(ctx, res.FileID)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range applied {
				t.Errorf("the second replica says it applied file %d (%s): the first did; it would count, "+
					"log and answer it again", a.File.ID, a.Result.Status)
			}
			want := outcome.Completed
			if file == "" {
				want = outcome.Quarantined
			}
			if f, _ := l.ReceivedFile(ctx, res.FileID); f.Status != want {
				t.Errorf("the file is %s, want %s", f.Status, want)
			}
		})
	}
}

// setup gives a test the example config, a migrated ledger holding acme's
// fixture actions, and a pipeline on it.
func setup(t *testing.T) (*config.Config, *ledger.Ledger, *pipeline.Pipeline) {
	t.Helper()
	return setupWith(t, "")
}

// setupWith is setup with more of the config (sources:, spool_dir:).
func setupWith(t *testing.T, yaml string) (*config.Config, *ledger.Ledger, *pipeline.Pipeline) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(strings.NewReader(string(returnsd.ExampleConfig)+yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ctx, pgtest.NewDatabase(t), nil)
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
	data, _ := returnsd.Fixtures.ReadFile("fixtures/acme_actions.csv")
	actions := filepath.Join(t.TempDir(), "acme_actions.csv")
	os.WriteFile(actions, data, 0o644)
	acme, _ := cfg.Brand("acme")
	pipe := &pipeline.Pipeline{Ledger: l, SpoolDir: t.TempDir()}
	if _, err := pipe.Process(ctx, pipeline.Params{Brand: "acme", Format: pipeline.Format(acme), Source: "cli",
		Actor: "cli:test", Path: actions, Kind: processors.Actions}); err != nil {
		t.Fatal(err)
	}
	return cfg, l, pipe
}
