package poller_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/ingest/localdir"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
)

// A brand that sends the same bytes under two names, both taken before
// either is applied (the daemon queues each file to a job of its own), hears
// back under each name: the first applied, the second a DUPLICATE_FILE of it.
// Each name got its own source file, acknowledged once its own answer is out.
func TestTheSameBytesUnderTwoNamesAreAnsweredUnderEach(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	inbox, results := filepath.Join(dir, "inbox"), filepath.Join(dir, "results")
	os.Mkdir(inbox, 0o755)
	cfg, l, files := setupWith(t, "sources:\n  - {name: drop, brand: acme, type: localdir, stable_wait: 1s, path: "+
		inbox+", result_path: "+results+"}\nspool_dir: "+filepath.Join(dir, "spool")+"\n")
	body := []byte("ActionId,Reason\n5001,RETURNED\n")
	old := time.Now().Add(-time.Hour)
	for _, name := range []string{"returns_monday.csv", "returns_monday_again.csv"} {
		p := filepath.Join(inbox, name)
		os.WriteFile(p, body, 0o644)
		os.Chtimes(p, old, old)
	}
	src, err := cfg.Source("drop")
	if err != nil {
		t.Fatal(err)
	}
	var queued []int64
	p := &poller.Poller{Ledger: l, Files: files, Config: cfg,
		Enqueue: func(_ context.Context, _ pgx.Tx, id int64) error { queued = append(queued, id); return nil },
		Sleep:   func(context.Context, time.Duration) error { return nil }}

	rep, err := p.PollOnce(ctx, localdir.New(src), src, poller.PollOptions{})
	if err != nil {
		t.Fatalf("first poll: %v (%+v)", err, rep)
	}
	if len(rep.Files) != 2 || rep.Files[0].Status != string(poller.StatusQueued) || rep.Files[1].Status != string(poller.StatusQueued) {
		t.Fatalf("first poll: %+v, want both files queued", rep.Files)
	}
	if len(queued) != 2 || queued[0] == queued[1] {
		t.Fatalf("queued files %v, want one of each name", queued)
	}
	for _, id := range queued {
		if _, err := p.ApplyWaiting(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := l.ReceivedFile(ctx, queued[0])
	second, _ := l.ReceivedFile(ctx, queued[1])
	if first.Status != outcome.Completed || first.Applied != 1 {
		t.Errorf("the first name: %s, %d applied; want COMPLETED, 1 applied", first.Status, first.Applied)
	}
	if second.Status != outcome.DuplicateFile || second.DuplicateOf != first.ID {
		t.Errorf("the second name: %s of %d; want DUPLICATE_FILE of %d", second.Status, second.DuplicateOf, first.ID)
	}

	rep, err = p.PollOnce(ctx, localdir.New(src), src, poller.PollOptions{DeliverOnly: true})
	if err != nil {
		t.Fatalf("delivering poll: %v (%+v)", err, rep)
	}
	for _, name := range []string{"returns_monday", "returns_monday_again"} {
		found, _ := filepath.Glob(filepath.Join(results, "result_"+name+"_[0-9]*.csv"))
		if len(found) != 1 {
			t.Errorf("results for %s: %q, want one", name, found)
			continue
		}
		if data, _ := os.ReadFile(found[0]); !strings.Contains(string(data), "5001") {
			t.Errorf("%s: the result does not hold the row:\n%s", found[0], data)
		}
		if _, err := os.Stat(filepath.Join(inbox, "processed", name+".csv")); err != nil {
			t.Errorf("%s.csv is not acknowledged: %v", name, err)
		}
	}
}
