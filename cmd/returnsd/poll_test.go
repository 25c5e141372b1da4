package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	t.Parallel()

	t.Run("PollsALocalFolderAndAppliesAStableFileOnce", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		inbox, results := filepath.Join(b.dir, "inbox"), filepath.Join(b.dir, "results")
		os.Mkdir(inbox, 0o755)
		data, _ := os.ReadFile(b.path("acme_returns.csv"))
		p := filepath.Join(inbox, "acme_returns.csv")
		os.WriteFile(p, data, 0o644)
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
		cfg := writeConfig(t, b.dir, "log:\n", "sources:\n  - {name: drop, brand: acme, type: localdir, stable_wait: 1s, path: "+inbox+
			", result_path: "+results+"}\nspool_dir: "+filepath.Join(b.dir, "spool")+"\nlog:\n")

		// Listed, listed again a second later unchanged, taken: in the poll that finds it.
		out := c.mustRun("--config", cfg, "poll", "drop")
		if !strings.Contains(out, "acme_returns.csv\tCOMPLETED\tfile ") || !strings.Contains(out, "rows 12: applied") {
			t.Fatalf("first poll:\n%s", out)
		}
		if found, _ := filepath.Glob(filepath.Join(results, "result_acme_returns_*.csv")); len(found) != 1 {
			t.Errorf("result files %q", found)
		}
		if _, err := os.Stat(filepath.Join(inbox, "processed", "acme_returns.csv")); err != nil {
			t.Errorf("not moved to processed/: %v", err)
		}
		if out := c.mustRun("poll", "--config", cfg, "drop"); !strings.Contains(out, "drop: no new files") {
			t.Errorf("third poll:\n%s", out)
		}
	})

	t.Run("ANameWithATabAndANewlineCannotForgeALineOfTheReport", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		inbox := filepath.Join(b.dir, "inbox")
		os.Mkdir(inbox, 0o755)
		data, _ := os.ReadFile(b.path("acme_returns.csv"))
		name := "x.csv\tCOMPLETED\tfile 99\nevil.csv"
		p := filepath.Join(inbox, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
		cfg := writeConfig(t, b.dir, "log:\n", "sources:\n  - {name: drop, brand: acme, type: localdir, stable_wait: 1s, path: "+inbox+
			", result_path: "+filepath.Join(b.dir, "results")+"}\nspool_dir: "+filepath.Join(b.dir, "spool")+"\nlog:\n")
		out := c.mustRun("poll", "--config", cfg, "drop")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], `x.csv\tCOMPLETED\tfile 99\nevil.csv`+"\tCOMPLETED\tfile 2\t") {
			t.Errorf("the report is not one line per file, names escaped:\n%s", out)
		}
	})

	t.Run("ASourceWhoseSecretIsUnsetStopsOnlyItself", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		cfg := writeConfig(t, b.dir, "log:\n", `sources:
  - {name: globex-ftp, brand: globex, type: ftp, address: "ftp.globex.example:21", username: returnsd, password: "${GLOBEX_FTP_PASSWORD}", path: /returns}
log:
`)
		// Commands that do not need the source work.
		if out := c.mustRun("export", "balances", "--config", cfg); !strings.Contains(out, "acme,USD") {
			t.Errorf("export balances:\n%s", out)
		}
		o := c.run("poll", "--config", cfg, "globex-ftp")
		if o.code != 1 || !strings.Contains(o.stderr, "source globex-ftp: password: environment variable GLOBEX_FTP_PASSWORD is not set") {
			t.Errorf("poll: exit %d\n%s", o.code, o.stderr)
		}
	})

	t.Run("AnUnknownSourceIsAnError", func(t *testing.T) {
		t.Parallel()
		c, _ := setupLoaded(t)
		if o := c.run("poll", "nowhere"); o.code != 1 || !strings.Contains(o.stderr, `unknown source "nowhere"`) {
			t.Errorf("exit %d: %s", o.code, o.stderr)
		}
	})
}
