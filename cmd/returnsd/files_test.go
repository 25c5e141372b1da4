package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
)

// lateAction is a tracking export holding action 9999, which
// acme_returns.csv reverses at line 10 before it is tracked.
const lateAction = "ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency,Payout,State\n" +
	"9999,301,1001,ORD-9999,2026-11-20T10:00:00-05:00,30.00,USD,,PENDING\n"

// newFileID is the file id a rerun's first line names.
var newFileID = regexp.MustCompile(`^file (\d+): `)

func rerunID(t *testing.T, out string) string {
	t.Helper()
	m := newFileID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no new file in:\n%s", out)
	}
	return m[1]
}

// dropConfig is the example config with a local folder source for acme,
// and acme's file_format mended (aliases for the file of quarantineThenMend)
// when mended.
func dropConfig(t *testing.T, b *testBundle, mended bool) string {
	t.Helper()
	tracker := `      - {id: 1003, name: Paid Click, kind: CPC, payout_fixed: "0.10"}` + "\n"
	format := tracker
	if mended {
		format += "    file_format: {aliases: {Vorgang: ActionId}}\n"
	}
	return writeConfig(t, b.dir, tracker, format, "log:\n", "sources:\n  - {name: drop, brand: acme, type: localdir, stable_wait: 1s, path: "+
		filepath.Join(b.dir, "inbox")+", result_path: "+filepath.Join(b.dir, "results")+"}\nspool_dir: "+filepath.Join(b.dir, "spool")+"\nlog:\n")
}

func TestFiles(t *testing.T) {
	t.Parallel()

	t.Run("ListShowAndDownloadFindAFileAndFetchItsBytesAndResult", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("apply", "--brand", "acme", "--result", filepath.Join(b.dir, "r.csv"), b.path("acme_returns.csv"))
		os.WriteFile(b.path("junk.csv"), []byte("Foo,Bar\n1,2\n"), 0o644)
		if o := c.run("apply", "--brand", "acme", b.path("junk.csv")); o.code != 3 {
			t.Fatalf("junk: exit %d %s", o.code, o.stderr)
		}

		out := c.mustRun("files", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID  RECEIVED") ||
			!regexp.MustCompile(`^3 .* acme +cli +QUARANTINED +- +- +- +- +- +junk\.csv$`).MatchString(lines[1]) ||
			!regexp.MustCompile(`^2 .* acme +cli +COMPLETED +12 +\d+ +\d+ +\d+ +- +acme_returns\.csv$`).MatchString(lines[2]) {
			t.Errorf("files list:\n%s", out)
		}
		if out := c.mustRun("files", "list", "--status", "completed", "--limit", "1", "--since", "1h"); strings.Count(out, "\n") != 2 ||
			!strings.Contains(out, "acme_returns.csv") {
			t.Errorf("files list --status completed --limit 1:\n%s", out)
		}
		if out := c.mustRun("files", "list", "--brand", "globex"); out != "no files\n" {
			t.Errorf("globex's files:\n%s", out)
		}
		if out := c.mustRun("files", "list", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); out != "no files\n" {
			t.Errorf("files from the future:\n%s", out)
		}
		var listed []map[string]any
		if err := json.Unmarshal([]byte(c.mustRun("files", "list", "--format", "json")), &listed); err != nil || len(listed) != 3 ||
			listed[1]["status"] != "COMPLETED" || listed[1]["rows"].(map[string]any)["total"] != float64(12) {
			t.Errorf("files list --format json: %v %v", listed, err)
		}
		for _, bad := range [][]string{{"list", "--status", "DONE"}, {"list", "--limit", "0"}, {"list", "--since", "soon"},
			{"show"}, {"show", "x"}, {"frobnicate"}} {
			if o := c.run(append([]string{"files"}, bad...)...); o.code != 2 {
				t.Errorf("files %v: exit %d", bad, o.code)
			}
		}

		show := c.mustRun("files", "show", "2")
		for _, want := range []string{"status    COMPLETED (action-updates)", "source    cli", "rows      12: applied ",
			"ACTION_NOT_FOUND", "its bytes kept", "finished  "} {
			if !strings.Contains(show, want) {
				t.Errorf("files show lacks %q:\n%s", want, show)
			}
		}
		if show := c.mustRun("files", "show", "3"); !strings.Contains(show, "code      UNKNOWN_KIND") {
			t.Errorf("files show of the quarantined file:\n%s", show)
		}
		if o := c.run("files", "show", "99"); o.code != 1 || !strings.Contains(o.stderr, "no such received file") {
			t.Errorf("files show 99: exit %d %s", o.code, o.stderr)
		}

		orig := filepath.Join(b.dir, "orig.csv")
		c.mustRun("files", "download", "2", "-o", orig)
		if fileSHA256(t, orig) != fileSHA256(t, b.path("acme_returns.csv")) {
			t.Error("the download is not the bytes received")
		}
		result := c.mustRun("files", "download", "2", "--result", "-o", "-")
		if want, _ := os.ReadFile(filepath.Join(b.dir, "r.csv")); result != string(want) {
			t.Errorf("the result downloaded is not the one apply wrote:\n%s", result)
		}
		if receipt := c.mustRun("files", "download", "3", "--result", "-o", "-"); !strings.Contains(receipt, ",QUARANTINED,UNKNOWN_KIND,") {
			t.Errorf("receipt:\n%s", receipt)
		}
	})

	t.Run("RetryRejectedAppliesTheRowsWhoseActionsCameLateOnceAndNeverAgain", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("apply", "--brand", "acme", "--result", filepath.Join(b.dir, "r.csv"), b.path("acme_returns.csv"))
		// Before the action came, a retry rejects the row again, and leaves it to the next.
		if out := c.mustRun("files", "retry-rejected", "2"); !strings.Contains(out, "file 3: a retry of the rejected rows of file 2, asked by cli:tester") ||
			!strings.Contains(out, "COMPLETED: rows 1: applied 0, rejected 1") {
			t.Errorf("a retry before the action came:\n%s", out)
		}
		os.WriteFile(b.path("late.csv"), []byte(lateAction), 0o644)
		c.mustRun("import", "actions", "--brand", "acme", b.path("late.csv"))
		// The brand sends the file again: a duplicate, which changes nothing...
		if out := c.mustRun("apply", "--brand", "acme", "--result", filepath.Join(b.dir, "again.csv"), b.path("acme_returns.csv")); !strings.Contains(out, "DUPLICATE_FILE (file 5)") {
			t.Fatalf("the file sent again:\n%s", out)
		}
		// ...and a retry asked of it retries the original's rows.
		out := c.mustRun("files", "retry-rejected", "5", "--actor", "ops:carol")
		id := rerunID(t, out)
		if !strings.Contains(out, "a retry of the rejected rows of file 2, asked by ops:carol") ||
			!strings.Contains(out, "COMPLETED: rows 1: applied 1, rejected 0") || !strings.Contains(out, "no source to answer through") {
			t.Errorf("files retry-rejected:\n%s", out)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE action_id = 9999 AND kind = 'REVERSE' AND actor = 'ops:carol'"); n != 1 {
			t.Errorf("%d reversals of 9999 by who asked; want 1", n)
		}
		rows := readCSV(t, c.mustRun("files", "download", id, "--result", "-o", "-"))
		if len(rows) != 2 || rows[1][0] != "9999" || rows[1][8] != "10" || rows[1][9] != "APPLIED" {
			t.Errorf("the retry's result: %q", rows)
		}

		o := c.run("files", "retry-rejected", id)
		if o.code != 1 || !strings.Contains(o.stderr, "file 2 cannot be retried: none of its rows is rejected") {
			t.Errorf("a second retry: exit %d %s", o.code, o.stderr)
		}
		show := c.mustRun("files", "show", "2")
		if !strings.Contains(show, "run again  file 3, a retry: COMPLETED\n") || !strings.Contains(show, fmt.Sprintf("file %s, a retry: COMPLETED", id)) ||
			!strings.Contains(show, "cli:tester files.retry_rejected") || !strings.Contains(show, "ops:carol files.retry_rejected") {
			t.Errorf("files show of the original:\n%s", show)
		}
		show = c.mustRun("files", "show", id)
		for _, want := range []string{"retry of  file 2", "asked by  ops:carol", "name      acme_returns_retry.csv",
			"answered  nothing to send: the command line's file"} {
			if !strings.Contains(show, want) {
				t.Errorf("files show of the retry lacks %q:\n%s", want, show)
			}
		}
		if o := c.run("files", "reprocess", "2"); o.code != 1 || !strings.Contains(o.stderr, "file 2 cannot be reprocessed: it is COMPLETED, not QUARANTINED") {
			t.Errorf("reprocess of a completed file: exit %d %s", o.code, o.stderr)
		}
		os.WriteFile(b.path("junk.csv"), []byte("Foo,Bar\n1,2\n"), 0o644)
		c.run("apply", "--brand", "acme", b.path("junk.csv"))
		if o := c.run("files", "reprocess", "7"); o.code != 1 || !strings.Contains(o.stderr, "it was given to the command line") {
			t.Errorf("reprocess of the command line's quarantined file: exit %d %s", o.code, o.stderr)
		}
	})

	t.Run("RetryRejectedResolvesAnInquiryThatCameLate", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("import", "inquiries", "--brand", "acme", b.path("acme_inquiries.csv"))
		c.mustRun("apply", "--brand", "acme", "--result", filepath.Join(b.dir, "r.csv"), b.path("acme_resolutions.csv"))
		if n := b.queryInt(t, "SELECT count(*) FROM file_rows WHERE file_id = 3 AND line = 6 AND code = 'INQUIRY_NOT_FOUND'"); n != 1 {
			t.Fatalf("INQ-9999 at line 6 is not INQUIRY_NOT_FOUND")
		}
		os.WriteFile(b.path("late_inquiries.csv"), []byte("Inquiry Id,PartnerId,Order Id,Action Tracker,Transaction Date,Sale Amount,"+
			"Expected Payout,Type,Submission Date\nINQ-9999,306,ORD-2999,1001,2026-11-01 10:00,50.00,4.25,UNTRACKED,2026-11-10 09:00\n"), 0o644)
		c.mustRun("import", "inquiries", "--brand", "acme", b.path("late_inquiries.csv"))
		out := c.mustRun("files", "retry-rejected", "3")
		if !strings.Contains(out, "rows 1, at their lines in file 3") || !strings.Contains(out, "COMPLETED: rows 1: applied 1") {
			t.Errorf("files retry-rejected:\n%s", out)
		}
		rows := readCSV(t, c.mustRun("files", "download", rerunID(t, out), "--result", "-o", "-"))
		if len(rows) != 2 || rows[1][0] != "INQ-9999" || rows[1][8] != "6" || rows[1][9] != "APPLIED" {
			t.Errorf("the retry's result: %q", rows)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM inquiries WHERE inquiry_id = 'INQ-9999' AND status = 'DECLINED' AND resolved_by = 'cli:tester'"); n != 1 {
			t.Error("INQ-9999 is not declined in the name of who asked")
		}
	})

	t.Run("ReprocessRunsAQuarantinedFileAgainOnceTheConfigIsMendedAndAnswersItThroughItsSource", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		inbox, results := filepath.Join(b.dir, "inbox"), filepath.Join(b.dir, "results")
		os.Mkdir(inbox, 0o755)
		p := filepath.Join(inbox, "vorgang.csv")
		os.WriteFile(p, []byte("Vorgang,Reason\n5001,RETURNED\n"), 0o644)
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
		if out := c.mustRun("poll", "--config", dropConfig(t, b, false), "drop"); !strings.Contains(out, "vorgang.csv\tQUARANTINED\tfile 2") {
			t.Fatalf("poll:\n%s", out)
		}
		o := c.run("files", "reprocess", "2", "--config", dropConfig(t, b, false))
		if o.code != 3 || !strings.Contains(o.stdout, "QUARANTINED again: UNKNOWN_KIND") ||
			!strings.Contains(o.stdout, "answered through source drop") {
			t.Fatalf("a reprocess before the config is mended: exit %d\n%s%s", o.code, o.stdout, o.stderr)
		}
		if found, _ := filepath.Glob(filepath.Join(results, "receipt_vorgang_*.csv")); len(found) != 2 {
			t.Errorf("receipts %q; want the file's and its reprocess's", found)
		}

		out := c.mustRun("files", "reprocess", "3", "--config", dropConfig(t, b, true)) // asked of the reprocess: its original's
		id := rerunID(t, out)
		if !strings.Contains(out, "a reprocess of file 2, asked by cli:tester") || !strings.Contains(out, "COMPLETED: rows 1: applied 1") {
			t.Errorf("files reprocess:\n%s", out)
		}
		result, err := os.ReadFile(filepath.Join(results, "result_vorgang_"+id+".csv"))
		if err != nil || !strings.Contains(string(result), "5001,RETURNED,2,APPLIED") {
			t.Errorf("the result uploaded: %s (%v)", result, err)
		}
		if o := c.run("files", "reprocess", "2", "--config", dropConfig(t, b, true)); o.code != 1 ||
			!strings.Contains(o.stderr, "it was reprocessed as file "+id+", which ended COMPLETED") {
			t.Errorf("a third reprocess: exit %d %s", o.code, o.stderr)
		}
		show := c.mustRun("files", "show", id)
		if !strings.Contains(show, "reprocess of  file 2") || !strings.Contains(show, "answered      20") {
			t.Errorf("files show:\n%s", show)
		}
		if out := c.mustRun("files", "answer", id); out != "file "+id+": answered\n" {
			t.Errorf("files answer of a file answered: %s", out)
		}
	})
}

func TestDownloadNamesAreTheFilesOrWhatTheBrandGot(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		f      ledger.ReceivedFile
		result bool
		want   string
	}{
		{ledger.ReceivedFile{ID: 7, Name: "returns.csv", Status: outcome.Completed}, false, "returns.csv"},
		{ledger.ReceivedFile{ID: 7, Name: "returns.csv", Status: outcome.Completed}, true, "result_returns_7.csv"},
		{ledger.ReceivedFile{ID: 8, Name: "junk.xlsx", Status: outcome.Quarantined}, true, "receipt_junk_8.csv"},
		{ledger.ReceivedFile{ID: 9, Name: "batch/returns.csv", Status: outcome.Completed}, false, "returns.csv"},
		{ledger.ReceivedFile{ID: 10, Name: "x.csv\nevil", Status: outcome.Completed}, false, "file-10"},
		{ledger.ReceivedFile{ID: 11, Name: "..", Status: outcome.Completed}, false, "file-11"},
	} {
		if got := downloadName(c.f, c.result); got != c.want {
			t.Errorf("downloadName(%q, %v) = %q; want %q", c.f.Name, c.result, got, c.want)
		}
	}
}
