package daemon_test

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTheDaemonAppliesEachFileOfAZipAsItsOwn(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.start(t)
	var z bytes.Buffer
	w := zip.NewWriter(&z)
	for name, body := range map[string]string{
		"returns.csv":   "ActionId,Reason\n5001,ITEM_RETURNED\n",
		"approvals.csv": "ActionId,Reason\n5002,APPROVED\n",
	} {
		f, _ := w.Create(name)
		f.Write([]byte(body))
	}
	w.Close()
	b.put(t, "batch.zip", z.String())

	eventually(t, 60*time.Second, "both files of the zip are answered and the zip moved to processed/", func() bool {
		results, _ := filepath.Glob(filepath.Join(b.results, "result_*.csv"))
		_, err := os.Stat(filepath.Join(b.inbox, "processed", "batch.zip"))
		return len(results) == 2 && err == nil
	})
	for _, want := range []string{"result_returns_*.csv", "result_approvals_*.csv"} {
		if found, _ := filepath.Glob(filepath.Join(b.results, want)); len(found) != 1 {
			t.Errorf("no %s", want)
		}
	}
	if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE actor = 'source:drop'"); n != 2 {
		t.Errorf("%d events from the zip's files, want 2", n)
	}
}
