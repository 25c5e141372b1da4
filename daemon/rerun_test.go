package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// waitForFile waits until the source's file name is finished and returns its id.
func (b *testBundle) waitForFile(t *testing.T, name string, status outcome.FileStatus) int64 {
	t.Helper()
	var id int64
	eventually(t, 60*time.Second, name+" is "+string(status), func() bool {
		err := b.db.QueryRow(context.Background(), `SELECT id FROM received_files WHERE name = $1 AND status = $2 AND source = 'drop'
			AND reprocess_of IS NULL AND retry_of IS NULL`, name, string(status)).Scan(&id)
		return err == nil
	})
	return id
}

// waitForResult waits for a result file in the results folder and returns it.
func (b *testBundle) waitForResult(t *testing.T, name string) string {
	t.Helper()
	var body []byte
	eventually(t, 60*time.Second, name+" is uploaded", func() bool {
		var err error
		body, err = os.ReadFile(filepath.Join(b.results, name))
		return err == nil
	})
	return string(body)
}

func TestTheDaemonAppliesAndAnswersReruns(t *testing.T) {
	t.Parallel()

	t.Run("ARetryOfRejectedRowsIsAppliedByAJobAndAnsweredByAnother", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		r := b.start(t)
		b.put(t, "returns.csv", "ActionId,Reason\n5001,RETURNED\n99001,RETURNED\n")
		orig := b.waitForFile(t, "returns.csv", outcome.Completed)
		b.waitForResult(t, fmt.Sprintf("result_returns_%d.csv", orig))

		ctx := context.Background()
		l := b.open(t)
		actions := filepath.Join(b.dir, "late.csv")
		os.WriteFile(actions, []byte("ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency,Payout,State\n"+
			"99001,301,1001,ORD-99001,2026-11-20T10:00:00Z,40.00,USD,,PENDING\n"), 0o644)
		acme, _ := b.cfg.Brand("acme")
		if _, err := (&pipeline.Pipeline{Ledger: l}).Process(ctx, pipeline.Params{Brand: "acme", Format: pipeline.ExportFormat(acme),
			Source: "cli", Actor: "cli:test", Path: actions, Kind: processors.Actions}); err != nil {
			t.Fatal(err)
		}
		rerun, err := r.RetryRejected(ctx, orig, "web:alice")
		if err != nil || rerun.Rows != 1 || rerun.File.Status != outcome.Received || rerun.File.RetryOf != orig {
			t.Fatalf("retry: %+v, %v", rerun, err)
		}
		result := b.waitForResult(t, fmt.Sprintf("result_returns_retry_%d.csv", rerun.File.ID))
		if !strings.Contains(result, "99001,RETURNED,3,APPLIED") || strings.Contains(result, "5001") {
			t.Errorf("the retry's result:\n%s", result)
		}
		eventually(t, 30*time.Second, "the retry is recorded answered", func() bool {
			f, err := l.ReceivedFile(ctx, rerun.File.ID)
			return err == nil && !f.AnsweredAt.IsZero()
		})
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE actor = 'web:alice' AND action_id = 99001"); n != 1 {
			t.Errorf("%d events of the retry in the name of who asked; want 1", n)
		}
		eventually(t, 30*time.Second, "the answer job completes", func() bool {
			return b.queryInt(t, "SELECT count(*) FROM river_job WHERE kind = 'answer_file' AND state = 'completed'") == 1
		})
	})

	t.Run("AFileReprocessedAfterTheConfigWasMendedIsAnsweredWithItsResult", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		first := b.start(t)
		b.put(t, "vorgang.csv", "Vorgang,Reason\n5001,RETURNED\n")
		orig := b.waitForFile(t, "vorgang.csv", outcome.Quarantined)
		b.waitForResult(t, fmt.Sprintf("receipt_vorgang_%d.csv", orig))
		eventually(t, 30*time.Second, "the file is moved to failed/", func() bool {
			_, err := os.Stat(filepath.Join(b.inbox, "failed", "vorgang.csv"))
			return err == nil
		})

		// Ops mend the config and restart the daemon with it.
		first.stop(t)
		acme, _ := b.cfg.Brand("acme")
		acme.FileFormat.Aliases = map[string]string{"Vorgang": "ActionId"}
		r := b.start(t)
		rerun, err := r.Reprocess(context.Background(), orig, "web:bob")
		if err != nil || rerun.File.ReprocessOf != orig {
			t.Fatalf("reprocess: %+v, %v", rerun, err)
		}
		result := b.waitForResult(t, fmt.Sprintf("result_vorgang_%d.csv", rerun.File.ID))
		if !strings.Contains(result, "5001,RETURNED,2,APPLIED") {
			t.Errorf("the reprocess's result:\n%s", result)
		}
		_, err = r.Reprocess(context.Background(), orig, "web:bob")
		if _, ok := err.(*ledger.RefusedError); !ok {
			t.Errorf("a second reprocess: %v; want it refused", err)
		}
	})
}
