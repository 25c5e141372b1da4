// Package sourcetest is the one conformance suite every ingest.Source passes,
// run by each source's tests against an in-process server and a real one.
// It drives the source through the real Poller, pipeline and ledger (a fresh
// PostgreSQL database per test, from internal/pgtest), so what it checks is what
// a brand sees: files applied once, results uploaded, copies moved.
//
// Folder sources run Run: the servers under test serve the local file system,
// and the suite puts and inspects the source's files directly in a local
// folder. Mail sources run RunMail, the same behaviours where they make sense
// for mail and the ones only mail has: the suite delivers messages carrying the
// files into the server's mailboxes, inspects the mailboxes, and receives the
// result mails with an SMTP server of its own (mailer/smtptest).
package sourcetest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/poller"
	"github.com/returnsd/returnsd/processors"
)

// NewSource returns a source under test for cfg, whose Name, Brand, Path,
// ResultPath, Include, Exclude, After, MinAge and DoneMarker the suite has set
// (Path and ResultPath are local folders the server serves). It sets the fields
// that reach the server (Type, Address, credentials) and registers the source's
// Close with t.Cleanup.
type NewSource func(t *testing.T, cfg *config.Source) ingest.Source

// Run runs the conformance suite.
func Run(t *testing.T, newSource NewSource) {
	t.Run("AStableFileIsTakenOnTheSecondListingAppliedAndMoved", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("returns.csv", ReturnsFile(5001, "first"), time.Hour)
		h.WantStatus(h.Poll(), "returns.csv", poller.StatusWaiting)
		if n := h.QueryInt("SELECT count(*) FROM received_files WHERE source = $1", h.Cfg.Name); n != 0 {
			t.Fatalf("a file listed once was received: %d files", n)
		}
		rep := h.Poll()
		h.WantStatus(rep, "returns.csv", outcome.Completed)
		h.wantFiles(h.Dir, nil)
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{"returns.csv"})
		result := h.readResult("result_returns_*.csv")
		if !strings.Contains(result, "Outcome") || !strings.Contains(result, "APPLIED") {
			t.Errorf("result file:\n%s", result)
		}
		if got := h.queryText("SELECT actor FROM ledger_events WHERE action_id = 5001 AND kind = 'REVERSE'"); got != "source:"+h.Cfg.Name {
			t.Errorf("actor %q", got)
		}
		if got := h.queryText("SELECT state FROM source_files WHERE path LIKE '%returns.csv'"); got != "ACKED" {
			t.Errorf("seen state %q", got)
		}
	})

	t.Run("WithASettleTimeAStableFileIsTakenInThePollThatFindsIt", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) { c.StableWait = config.Duration{Time: 300 * time.Millisecond} })
		h.Put("returns.csv", ReturnsFile(5001, "first"), time.Hour)
		h.WantStatus(h.Poll(), "returns.csv", outcome.Completed)
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{"returns.csv"})
	})

	t.Run("AFileThatChangesWithinTheSettleTimeWaits", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) { c.StableWait = config.Duration{Time: 300 * time.Millisecond} })
		first := ReturnsFile(5001, "half")
		h.Put("growing.csv", first, time.Hour)
		lists := 0
		growing := &faultySource{Source: h.Src, afterList: func() {
			if lists++; lists == 1 {
				h.Put("growing.csv", first+"5002,RETURNED,rest\n", time.Hour) // same time, new size
			}
		}}
		rep, err := h.PollWith(growing)
		if err != nil {
			t.Fatal(err)
		}
		h.WantStatus(rep, "growing.csv", poller.StatusWaiting)
		h.WantStatus(h.Poll(), "growing.csv", outcome.Completed)
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 2 {
			t.Errorf("%d reversals; want both rows of the finished file", n)
		}
	})

	t.Run("AFileDatedInTheFutureByTheServerIsTakenOnceSeenForMinAge", func(t *testing.T) {
		t.Parallel()
		// A server reporting local time east of us (vsftpd's use_localtime):
		// its new file looks an hour in the future; its age is ours to measure.
		h := Setup(t, newSource, func(c *config.Source) {
			c.MinAge, c.StableWait = config.Duration{Time: time.Second}, config.Duration{Time: 1200 * time.Millisecond}
		})
		h.Put("ahead.csv", ReturnsFile(5001, "a"), -time.Hour)
		h.WantStatus(h.Poll(), "ahead.csv", outcome.Completed)
	})

	t.Run("IncludeAndExcludeDecideWhatIsTaken", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) {
			c.Include, c.Exclude = []string{"*.csv"}, []string{"skip_*"}
		})
		h.Put("a.csv", ReturnsFile(5001, "a"), time.Hour)
		h.Put("b.txt", ReturnsFile(5002, "b"), time.Hour)
		h.Put("skip_c.csv", ReturnsFile(5003, "c"), time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "a.csv", outcome.Completed)
		h.wantFiles(h.Dir, []string{"b.txt", "skip_c.csv"})
	})

	t.Run("ANameThatIsNotUTF8IsTakenAndBlocksNothing", func(t *testing.T) {
		t.Parallel()
		// A Windows client without UTF-8 writes Latin-1: "Retouren März.csv" as bytes.
		latin1 := "Retouren M\xe4rz.csv"
		h := Setup(t, newSource)
		h.Put(latin1, ReturnsFile(5001, "latin-1"), time.Hour)
		h.Put("good.csv", ReturnsFile(5002, "good"), time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, latin1, outcome.Completed)
		h.WantStatus(rep, "good.csv", outcome.Completed)
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{latin1, "good.csv"})
		// The result keeps the name's bytes, as the brand's client will show it.
		h.readResult("result_Retouren M\xe4rz_*.csv")
		var name string
		if err := h.db.QueryRow(context.Background(), "SELECT name FROM received_files WHERE source = $1 AND name LIKE 'Retouren%'",
			h.Cfg.Name).Scan(&name); err != nil || name != `Retouren M\xe4rz.csv` {
			t.Errorf("stored name %q (%v); want it escaped", name, err)
		}
	})

	t.Run("AZipOfSeveralFilesAppliesEachAndAnswersEach", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("march.csv", ReturnsFile(5003, "sent alone before"), time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "march.csv", outcome.Completed)
		h.Put("batch.zip", zipOf(t, map[string]string{
			"batch/returns.csv":            ReturnsFile(5001, "in the zip"),
			"batch/approvals.csv":          "ActionId,Reason\n5002,APPROVED\n",
			"batch/march.csv":              ReturnsFile(5003, "sent alone before"), // the same bytes again
			"__MACOSX/batch/._returns.csv": "resource fork",
			"batch/.DS_Store":              "finder",
			"Thumbs.db":                    "explorer",
		}), time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "batch.zip", outcome.Completed)
		if s := rep.Files[0].Result.Summary; s.Rows != 2 || s.Applied != 2 {
			t.Errorf("summary %+v; want the rows of both new files", s)
		}
		for _, want := range []string{"result_returns_*.csv", "result_approvals_*.csv"} {
			if r := h.readResult(want); !strings.Contains(r, "APPLIED") {
				t.Errorf("%s:\n%s", want, r)
			}
		}
		if found, _ := filepath.Glob(filepath.Join(h.resultDir, "result_march_*.csv")); len(found) != 2 {
			t.Errorf("results of march.csv %q; want its own and the duplicate's in the zip", found)
		}
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{"batch.zip", "march.csv"})
		if n := h.QueryInt("SELECT count(*) FROM received_files WHERE parent_id IS NOT NULL"); n != 3 {
			t.Errorf("%d files of the archive; want 3 (the junk is not data)", n)
		}
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = 5003 AND kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals of 5003; want 1", n)
		}
	})

	t.Run("IncludePatternsMatchIgnoringCase", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) { c.Include = []string{"*.csv"} })
		h.Put("RETURNS_SAP.CSV", ReturnsFile(5001, "sap"), time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "RETURNS_SAP.CSV", outcome.Completed)
	})

	t.Run("OurOwnResultAndReceiptFilesAreNeverTaken", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("result_x.csv", ReturnsFile(5001, "r"), time.Hour)
		h.Put("RECEIPT_y.csv", ReturnsFile(5002, "r"), time.Hour)
		h.Poll()
		if rep := h.Poll(); len(rep.Files) != 0 || rep.Listed != 0 {
			t.Fatalf("report %+v", rep)
		}
		h.wantFiles(h.Dir, []string{"RECEIPT_y.csv", "result_x.csv"})
	})

	t.Run("AFileYoungerThanMinAgeWaits", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) { c.MinAge = config.Duration{Time: time.Hour} })
		h.Put("new.csv", ReturnsFile(5001, "n"), 0)
		h.Poll()
		h.WantStatus(h.Poll(), "new.csv", poller.StatusWaiting)
	})

	t.Run("AFileStillBeingWrittenIsNotTakenUntilItStopsChanging", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		first := ReturnsFile(5001, "half")
		h.Put("growing.csv", first, time.Hour)
		h.Poll()
		h.Put("growing.csv", first+"5002,RETURNED,rest\n", time.Hour) // same time, new size
		h.WantStatus(h.Poll(), "growing.csv", poller.StatusWaiting)
		h.WantStatus(h.Poll(), "growing.csv", outcome.Completed)
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 2 {
			t.Errorf("%d reversals; want both rows of the finished file", n)
		}
	})

	t.Run("ADoneMarkerMakesAFileStableAndIsAcknowledgedWithIt", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) {
			c.DoneMarker, c.MinAge = ".done", config.Duration{Time: time.Hour}
		})
		h.Put("marked.csv", ReturnsFile(5001, "m"), 0)
		h.Poll()
		h.WantStatus(h.Poll(), "marked.csv", poller.StatusWaiting)
		h.Put("marked.csv.done", "", 0)
		h.WantStatus(h.Poll(), "marked.csv", outcome.Completed)
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{"marked.csv", "marked.csv.done"})
		h.wantFiles(h.Dir, nil)
	})

	t.Run("AQuarantinedFileIsMovedToFailed", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("junk.csv", "Foo,Bar\n1,2\n", time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "junk.csv", outcome.Quarantined)
		h.wantFiles(filepath.Join(h.Dir, "failed"), []string{"junk.csv"})
		// The brand hears back: a receipt with the code and the reason.
		receipt := h.readResult("receipt_junk_*.csv")
		if !strings.Contains(receipt, "File,FileId,ReceivedAt,Status,ErrorCode,Reason") ||
			!strings.Contains(receipt, "junk.csv,") || !strings.Contains(receipt, ",QUARANTINED,UNKNOWN_KIND,") {
			t.Errorf("receipt:\n%s", receipt)
		}
	})

	t.Run("AFileSentEveryWeekUnderOneNameKeepsEveryWeeksResult", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("returns.csv", ReturnsFile(5001, "week 1"), time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "returns.csv", outcome.Completed)
		h.Put("returns.csv", ReturnsFile(5002, "week 2"), 30*time.Minute)
		h.Poll()
		h.WantStatus(h.Poll(), "returns.csv", outcome.Completed)
		results, _ := filepath.Glob(filepath.Join(h.resultDir, "result_returns_*.csv"))
		if len(results) != 2 {
			t.Fatalf("results %q; want one per week", h.names(h.resultDir))
		}
		for _, r := range results {
			if body := h.read(r); !strings.Contains(body, ",ResultActionId,") || strings.Count(body, "ActionId") != 2 {
				t.Errorf("%s has no ResultActionId column or repeats a header name:\n%s", r, body)
			}
		}
	})

	t.Run("AfterDeleteRemovesTheFile", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) { c.After = config.AfterDelete })
		h.Put("del.csv", ReturnsFile(5001, "d"), time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "del.csv", outcome.Completed)
		h.wantFiles(h.Dir, nil)
	})

	t.Run("AfterLeaveLeavesTheFileAndNeverTakesItTwice", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource, func(c *config.Source) { c.After = config.AfterLeave })
		h.Put("stay.csv", ReturnsFile(5001, "s"), time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "stay.csv", outcome.Completed)
		if rep := h.Poll(); len(rep.Files) != 0 {
			t.Errorf("third poll: %+v", rep.Files)
		}
		// Touched (a new time, the same bytes): fetched once more, recognised, not processed.
		h.Put("stay.csv", ReturnsFile(5001, "s"), 30*time.Minute)
		h.Poll()
		h.WantStatus(h.Poll(), "stay.csv", poller.StatusAcknowledged)
		h.wantFiles(h.Dir, []string{"stay.csv"})
		if n := h.QueryInt("SELECT count(*) FROM received_files WHERE source = $1", h.Cfg.Name); n != 1 {
			t.Errorf("%d received files; want 1", n)
		}
	})

	t.Run("TheSameBytesUnderANewNameAreNotAppliedTwice", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		body := ReturnsFile(5002, "twice")
		h.Put("monday.csv", body, time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "monday.csv", outcome.Completed)
		h.Put("tuesday.csv", body, time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "tuesday.csv", outcome.DuplicateFile)
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = 5002 AND kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals of 5002; want 1", n)
		}
		if r := h.readResult("result_tuesday_*.csv"); !strings.Contains(r, "APPLIED") {
			t.Errorf("the duplicate's result should repeat the original's outcomes:\n%s", r)
		}
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{"monday.csv", "tuesday.csv"})
	})

	t.Run("ACrashBetweenCommitAndAcknowledgementIsHarmless", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("crash.csv", ReturnsFile(5001, "c"), time.Hour)
		h.Poll()
		failing := &faultySource{Source: h.Src, ackErr: errors.New("crashed before ack")}
		rep, _ := h.PollWith(failing)
		h.WantStatus(rep, "crash.csv", outcome.Completed)
		if rep.Files[0].AckErr == nil {
			t.Fatal("the failed ack is not reported")
		}
		h.wantFiles(h.Dir, []string{"crash.csv"})
		h.WantStatus(h.Poll(), "crash.csv", poller.StatusAcknowledged)
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{"crash.csv"})
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals; want 1", n)
		}
	})

	t.Run("ACrashBetweenCommitAndTheDoneRecordIsHarmless", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("crash.csv", ReturnsFile(5001, "c"), time.Hour)
		h.Poll()
		failing := &faultySource{Source: h.Src, putErr: errors.New("crashed before the result was uploaded")}
		rep, err := h.PollWith(failing)
		if err == nil {
			t.Fatal("no error")
		}
		h.WantStatus(rep, "crash.csv", poller.StatusError)
		// Next poll: the file was received and applied; it is not fetched again,
		// its result is uploaded and it is acknowledged.
		h.WantStatus(h.Poll(), "crash.csv", outcome.Completed)
		h.wantFiles(filepath.Join(h.Dir, "processed"), []string{"crash.csv"})
		if r := h.readResult("result_crash_*.csv"); !strings.Contains(r, "APPLIED") {
			t.Errorf("result:\n%s", r)
		}
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals; want 1", n)
		}
	})

	t.Run("AFileChangingDuringTheFetchIsNotApplied", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put("moving.csv", ReturnsFile(5001, "m"), time.Hour)
		h.Poll()
		grow := &faultySource{Source: h.Src, beforeFetch: func() {
			h.Put("moving.csv", ReturnsFile(5001, "m")+"5002,RETURNED,more\n", time.Hour)
		}}
		rep, err := h.PollWith(grow)
		if !errors.Is(err, ingest.ErrNotStable) {
			t.Fatalf("error %v; want ErrNotStable", err)
		}
		h.WantStatus(rep, "moving.csv", poller.StatusError)
		if n := h.QueryInt("SELECT count(*) FROM received_files WHERE source = $1", h.Cfg.Name); n != 0 {
			t.Errorf("%d files received", n)
		}
		h.Poll()
		h.WantStatus(h.Poll(), "moving.csv", outcome.Completed)
	})

	t.Run("FetchDeliversTheListedBytes", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		body := strings.Repeat(ReturnsFile(5001, "big"), 20000) // ~0.5 MB: several concurrent reads
		h.Put("big.csv", body, time.Hour)
		files, err := h.Src.List(context.Background())
		if err != nil || len(files) != 1 {
			t.Fatalf("list: %v %+v", err, files)
		}
		f := files[0]
		if f.Name != "big.csv" || f.Size != int64(len(body)) || f.ModTime.Sub(time.Now().Add(-time.Hour)).Abs() > 2*time.Second {
			t.Errorf("listed %+v", f)
		}
		var buf bytes.Buffer
		if err := h.Src.Fetch(context.Background(), f, &buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != body {
			t.Errorf("fetched %d bytes; want %d", buf.Len(), len(body))
		}
	})

	t.Run("ListLeavesOutFoldersAndSymbolicLinks", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		outside := filepath.Join(t.TempDir(), "secret.csv")
		os.WriteFile(outside, []byte(ReturnsFile(5001, "secret")), 0o644)
		if err := os.Symlink(outside, filepath.Join(h.Dir, "link.csv")); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(h.Dir, "folder.csv"), 0o755)
		h.Put("plain.csv", ReturnsFile(5002, "p"), time.Hour)
		files, err := h.Src.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 1 || files[0].Name != "plain.csv" {
			t.Errorf("listed %+v; want plain.csv only", files)
		}
	})

	t.Run("PathTraversalNamesNeverLeaveTheSpool", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Put(`..\evil.csv`, ReturnsFile(5001, "e"), time.Hour) // a legal name on a Unix server
		hostile := &faultySource{Source: h.Src, extra: []ingest.File{
			{Name: "../escape.csv", Path: "../escape.csv", Size: 10, ModTime: time.Now().Add(-time.Hour)},
			{Name: "sub/dir.csv", Path: "sub/dir.csv", Size: 10, ModTime: time.Now().Add(-time.Hour)},
			{Name: "..", Path: "..", Size: 10, ModTime: time.Now().Add(-time.Hour)},
		}}
		h.PollWith(hostile)
		rep, _ := h.PollWith(hostile)
		if len(rep.Files) != 0 || hostile.fetches.Load() != 0 {
			t.Errorf("hostile names were taken: %+v (%d fetches)", rep.Files, hostile.fetches.Load())
		}
		for _, err := range []error{
			h.Src.Fetch(context.Background(), ingest.File{Name: "../escape.csv", Path: "../escape.csv"}, io.Discard),
			h.Src.Ack(context.Background(), ingest.File{Name: "../escape.csv", Path: "../escape.csv"}, ingest.Processed),
			h.Src.Put(context.Background(), ingest.File{}, "../escape.csv", strings.NewReader("x")),
		} {
			if err == nil {
				t.Error("a source accepted a name with a slash")
			}
		}
		entries, _ := os.ReadDir(filepath.Dir(h.spool))
		for _, e := range entries {
			if e.Name() != filepath.Base(h.spool) {
				t.Errorf("%s appeared beside the spool", e.Name())
			}
		}
		h.wantFiles(h.Dir, []string{`..\evil.csv`})
	})

	t.Run("PutReplacesTheResultInOneStep", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		ctx := context.Background()
		for _, body := range []string{"first\n", "second\n"} {
			if err := h.Src.Put(ctx, ingest.File{Name: "x.csv"}, "result_x.csv", strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		}
		if got := h.read(filepath.Join(h.resultDir, "result_x.csv")); got != "second\n" {
			t.Errorf("result %q", got)
		}
		h.wantFiles(h.resultDir, []string{"result_x.csv"})
	})

	t.Run("AckIsIdempotentAndKeepsEarlierCopies", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		ctx := context.Background()
		for i := range 2 {
			h.Put("again.csv", ReturnsFile(5001, fmt.Sprint(i)), time.Hour)
			f := ingest.File{Name: "again.csv", Path: filepath.Join(h.Dir, "again.csv")}
			if err := h.Src.Ack(ctx, f, ingest.Processed); err != nil {
				t.Fatal(err)
			}
			if err := h.Src.Ack(ctx, f, ingest.Processed); err != nil {
				t.Fatalf("second ack: %v", err)
			}
		}
		if n := len(h.names(filepath.Join(h.Dir, "processed"))); n != 2 {
			t.Errorf("processed/ holds %d files; want both copies", n)
		}
	})

	t.Run("AFileOverTheSizeLimitIsQuarantinedWithoutFetchingIt", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.SetMaxFileBytes(10)
		h.Put("huge.csv", ReturnsFile(5001, "huge"), time.Hour)
		counting := &faultySource{Source: h.Src}
		h.PollWith(counting)
		rep, _ := h.PollWith(counting)
		h.WantStatus(rep, "huge.csv", outcome.Quarantined)
		if rep.Files[0].Result.Code != outcome.FileTooLarge || counting.fetches.Load() != 0 {
			t.Errorf("code %s, %d fetches", rep.Files[0].Result.Code, counting.fetches.Load())
		}
		h.wantFiles(filepath.Join(h.Dir, "failed"), []string{"huge.csv"})
	})

	t.Run("APollTakesABoundedNumberOfFiles", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.Poller.MaxFilesPerPoll = 1
		h.Put("one.csv", ReturnsFile(5001, "1"), 2*time.Hour)
		h.Put("two.csv", ReturnsFile(5002, "2"), time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "one.csv", outcome.Completed)
		h.WantStatus(rep, "two.csv", poller.StatusDeferred)
		h.WantStatus(h.Poll(), "two.csv", outcome.Completed)
	})

	runReruns(t, newSource)
}

// Harness is one test's source, folders, ledger and poller, for the suite and
// for a source's own fault tests.
type Harness struct {
	t         *testing.T
	Cfg       *config.Source
	Src       ingest.Source
	Dir       string // the source's folder, local
	resultDir string
	spool     string
	base      string // the test's temporary folder
	Poller    *poller.Poller
	pipeline  *pipeline.Pipeline
	db        *pgx.Conn
}

// SetMaxFileBytes lowers the file size limit of the poller and its pipeline.
func (h *Harness) SetMaxFileBytes(n int64) {
	h.Poller.Config.Limits.MaxFileBytes = n
	h.pipeline.Limits.MaxFileBytes = n
}

// Setup gives a test a fresh ledger holding acme's fixture actions, a source
// folder, and a source from newSource configured with edits applied.
func Setup(t *testing.T, newSource NewSource, edits ...func(*config.Source)) *Harness {
	t.Helper()
	h := newHarness(t)
	h.Dir = filepath.Join(h.base, "inbox")
	h.resultDir = filepath.Join(h.base, "results")
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := config.Source{Name: "test-source", Brand: "acme", Path: h.Dir, ResultPath: h.resultDir,
		After: config.AfterMove, MinAge: config.Duration{Time: time.Minute}, Schedule: config.DefaultSchedule,
		Timeout: config.Duration{Time: 10 * time.Second}}
	for _, e := range edits {
		e(&src)
	}
	h.Src = newSource(t, &src)
	h.Cfg = &src
	return h
}

// newHarness gives a test a fresh ledger holding acme's fixture actions and a
// poller over it; the caller adds the source.
func newHarness(t *testing.T) *Harness {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	cfg, err := config.Load(bytes.NewReader(returnsd.ExampleConfig), func(string) string { return url })
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	h := &Harness{t: t, base: base, spool: filepath.Join(base, "spool", "files")}
	l, err := ledger.Open(ctx, url, nil)
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
	pl := &pipeline.Pipeline{Ledger: l, Limits: pipeline.Limits(cfg.Limits), Retries: 1, RetryWait: time.Millisecond,
		SpoolDir: filepath.Join(base, "spool", "files", "ledger")}
	actions := filepath.Join(base, "acme_actions.csv")
	data, _ := returnsd.Fixtures.ReadFile("fixtures/acme_actions.csv")
	os.WriteFile(actions, data, 0o644)
	brand, _ := cfg.Brand("acme")
	if _, err := pl.Process(ctx, pipeline.Params{Brand: "acme", Format: pipeline.Format(brand), Source: "cli",
		Actor: "cli:test", Path: actions, Kind: processors.Actions}); err != nil {
		t.Fatal(err)
	}
	h.Poller = &poller.Poller{Ledger: l, Files: pl, Config: cfg, SpoolDir: h.spool}
	h.pipeline = pl
	h.db, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.db.Close(context.Background()) })
	return h
}

// zipOf is a zip holding files by name, in name order.
func zipOf(t *testing.T, files map[string]string) string {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		f, err := w.Create(name)
		if err == nil {
			_, err = f.Write([]byte(files[name]))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// ReturnsFile is a one-row reversal file; tag makes its bytes distinct.
func ReturnsFile(actionID int, tag string) string {
	return fmt.Sprintf("ActionId,Reason,Note\n%d,RETURNED,%s\n", actionID, tag)
}

// Put writes a file in the source's folder with a modification time age ago.
func (h *Harness) Put(name, body string, age time.Duration) {
	h.t.Helper()
	p := filepath.Join(h.Dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	mt := time.Now().Add(-age).Truncate(time.Second)
	if err := os.Chtimes(p, mt, mt); err != nil {
		h.t.Fatal(err)
	}
}

// Poll polls the source and fails the test on an error.
func (h *Harness) Poll() poller.PollReport {
	h.t.Helper()
	rep, err := h.PollWith(h.Src)
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	return rep
}

// PollWith polls src (a wrapper of Src) under the source's config.
func (h *Harness) PollWith(src ingest.Source) (poller.PollReport, error) {
	return h.Poller.PollOnce(context.Background(), src, h.Cfg, poller.PollOptions{})
}

// WantStatus fails the test unless the report says name ended with want.
func (h *Harness) WantStatus(rep poller.PollReport, name string, want any) {
	h.t.Helper()
	wantS := fmt.Sprint(want)
	for _, f := range rep.Files {
		if f.Name == name {
			if f.Status != wantS {
				h.t.Fatalf("%s: status %s (err %v); want %s", name, f.Status, f.Err, wantS)
			}
			return
		}
	}
	h.t.Fatalf("%s not in the report %+v; want %s", name, rep.Files, wantS)
}

func (h *Harness) names(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

func (h *Harness) wantFiles(dir string, want []string) {
	h.t.Helper()
	if got := h.names(dir); !slices.Equal(got, want) {
		h.t.Fatalf("%s holds %q; want %q", dir, got, want)
	}
}

// readResult reads the one file of the result folder whose name matches pattern.
func (h *Harness) readResult(pattern string) string {
	h.t.Helper()
	found, _ := filepath.Glob(filepath.Join(h.resultDir, pattern))
	if len(found) != 1 {
		h.t.Fatalf("result folder holds %q; want one file like %s", h.names(h.resultDir), pattern)
	}
	return h.read(found[0])
}

func (h *Harness) read(p string) string {
	h.t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

// QueryInt runs a query returning one integer on the test's database.
func (h *Harness) QueryInt(sql string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (h *Harness) queryText(sql string, args ...any) string {
	h.t.Helper()
	var s string
	if err := h.db.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// faultySource wraps a source to inject faults: extra (hostile) listed files, a
// change after a listing or before a fetch, failing Put or Ack (after acksBeforeErr good ones); it
// counts fetches and keeps the names fetched.
type faultySource struct {
	ingest.Source
	extra         []ingest.File
	afterList     func()
	beforeFetch   func()
	putErr        error
	ackErr        error
	acksBeforeErr int64
	acks          atomic.Int64
	fetches       atomic.Int64
	fetched       []string
}

func (f *faultySource) List(ctx context.Context) ([]ingest.File, error) {
	files, err := f.Source.List(ctx)
	if f.afterList != nil {
		f.afterList()
	}
	return append(files, f.extra...), err
}

func (f *faultySource) Fetch(ctx context.Context, file ingest.File, w io.Writer) error {
	f.fetches.Add(1)
	f.fetched = append(f.fetched, file.Name)
	if f.beforeFetch != nil {
		f.beforeFetch()
	}
	return f.Source.Fetch(ctx, file, w)
}

func (f *faultySource) Put(ctx context.Context, file ingest.File, name string, r io.Reader) error {
	if f.putErr != nil {
		return f.putErr
	}
	return f.Source.Put(ctx, file, name, r)
}

func (f *faultySource) Ack(ctx context.Context, file ingest.File, d ingest.Disposition) error {
	if f.ackErr != nil && f.acks.Add(1) > f.acksBeforeErr {
		return f.ackErr
	}
	return f.Source.Ack(ctx, file, d)
}
