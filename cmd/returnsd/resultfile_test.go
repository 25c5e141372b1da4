package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/returnsd/returnsd/internal/filename"
)

func TestTheResultFile(t *testing.T) {
	t.Parallel()

	t.Run("GoesIntoAPipeWithoutReplacingIt", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		fifo := filepath.Join(b.dir, "result.fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		read := make(chan string, 1)
		go func() {
			f, err := os.Open(fifo) // blocks until the writer opens it
			if err != nil {
				read <- "open: " + err.Error()
				return
			}
			defer f.Close()
			data, _ := io.ReadAll(f)
			read <- string(data)
		}()
		out := c.mustRun("apply", "--brand", "acme", "--result", fifo, b.path("acme_returns.csv"))
		var got string
		select {
		case got = <-read:
		case <-time.After(60 * time.Second):
			t.Fatal("nothing was written into the pipe within 60 s")
		}
		if n := strings.Count(got, "\r\n"); n != 13 {
			t.Errorf("the pipe got %d lines, want a header and 12 rows:\n%s\n(stdout %s)", n, got, out)
		}
		if info, err := os.Lstat(fifo); err != nil || info.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("the pipe was replaced: %v %v", info.Mode(), err)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(b.dir, ".result_*")); len(leftovers) > 0 {
			t.Errorf("temporary files left behind: %v", leftovers)
		}
	})

	t.Run("GoesToDevNullWhichStaysTheDevice", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("apply", "--brand", "acme", "--result", os.DevNull, b.path("acme_returns.csv"))
		info, err := os.Lstat(os.DevNull)
		if err != nil || info.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("%s is no longer a character device: %v %v", os.DevNull, info.Mode(), err)
		}
	})

	t.Run("IsWholeWhenThreeProcessesApplyTheSameFileAtOnce", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		var wg sync.WaitGroup
		outcomes := make([]outcomeOf, 3)
		for i := range outcomes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outcomes[i] = c.run("apply", "--brand", "acme", b.path("acme_returns.csv"))
			}()
		}
		wg.Wait()
		for i, o := range outcomes {
			if o.code != 0 {
				t.Errorf("process %d: exit %d\n%s%s", i, o.code, o.stdout, o.stderr)
			}
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE file_id IS NOT NULL AND kind <> 'CREATE'"); n != 4 {
			t.Errorf("%d ledger events from the file, want its 4 applied rows once", n)
		}
		data, err := os.ReadFile(b.path("result_acme_returns.csv"))
		if err != nil || strings.Count(string(data), "\r\n") != 13 {
			t.Errorf("result file (%v):\n%s", err, data)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(b.dir, ".result_*")); len(leftovers) > 0 {
			t.Errorf("temporary files left behind: %v", leftovers)
		}
	})

	t.Run("OfAFileWithA245CharacterNameIsWritten", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		name := strings.Repeat("Retouren_Oktober_", 15)[:241] + ".csv"
		data, _ := os.ReadFile(b.path("acme_returns.csv"))
		if err := os.WriteFile(b.path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		out := c.mustRun("apply", "--brand", "acme", b.path(name))
		results, _ := filepath.Glob(filepath.Join(b.dir, "result_Retouren_Oktober_*.csv"))
		if len(results) != 1 || len(filepath.Base(results[0])) > filename.MaxBytes {
			t.Fatalf("result files %v\n%s", results, out)
		}
		if got, _ := os.ReadFile(results[0]); strings.Count(string(got), "\r\n") != 13 {
			t.Errorf("result file:\n%s", got)
		}
	})
}

func TestAPolledFileWithA245CharacterNameIsAppliedAndAcknowledgedOnce(t *testing.T) {
	t.Parallel()
	c, b := setupLoaded(t)
	inbox, results := filepath.Join(b.dir, "inbox"), filepath.Join(b.dir, "results")
	os.Mkdir(inbox, 0o755)
	name := strings.Repeat("Retouren_Oktober_", 15)[:241] + ".csv"
	data, _ := os.ReadFile(b.path("acme_returns.csv"))
	write := func() {
		p := filepath.Join(inbox, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
	}
	write()
	cfg := writeConfig(t, b.dir, "log:\n", "sources:\n  - {name: drop, brand: acme, type: localdir, stable_wait: 1s, path: "+inbox+
		", result_path: "+results+"}\nspool_dir: "+filepath.Join(b.dir, "spool")+"\nlog:\n")
	if out := c.mustRun("poll", "--config", cfg, "drop"); !strings.Contains(out, "\tCOMPLETED\tfile ") || strings.Contains(out, "not yet acknowledged") {
		t.Fatalf("first poll:\n%s", out)
	}
	if out := c.mustRun("poll", "--config", cfg, "drop"); !strings.Contains(out, "drop: no new files") {
		t.Errorf("third poll:\n%s", out)
	}
	// The same name sent again is archived beside the first under a name that fits.
	write()
	if out := c.mustRun("poll", "--config", cfg, "drop"); !strings.Contains(out, "\tACKNOWLEDGED\t") || strings.Contains(out, "not yet acknowledged") {
		t.Fatalf("the same file again:\n%s", out)
	}
	processed, _ := os.ReadDir(filepath.Join(inbox, "processed"))
	if len(processed) != 2 {
		t.Errorf("processed/ holds %d files, want both copies", len(processed))
	}
	if got, _ := os.ReadDir(results); len(got) != 1 {
		t.Errorf("results/ holds %d files, want the result", len(got))
	}
}
