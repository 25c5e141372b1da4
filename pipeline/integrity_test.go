package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// stallingResult is a result file whose first write waits until the test lets it
// go, so the test can break the database under a result being written.
type stallingResult struct {
	*resultFile
	once    sync.Once
	writing chan struct{} // closed at the first write
	release chan struct{} // closed by the test
}

func (s *stallingResult) Write(p []byte) (int, error) {
	s.once.Do(func() {
		close(s.writing)
		<-s.release
	})
	return s.resultFile.Write(p)
}

func TestARetryStartsTheResultFileFromNothing(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	ctx := context.Background()
	// Enough rows that the result is written while its outcomes are still read.
	var data strings.Builder
	data.WriteString("ActionId,Amount,Reason\n")
	const rows = 3000
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&data, "%d,%d.00,ORDER_UPDATE\n", 5001+i%10, 10+i%90)
	}
	params := b.params(b.write(t, "big.csv", []byte(data.String())), "")
	result := &stallingResult{resultFile: b.result(t), writing: make(chan struct{}), release: make(chan struct{})}
	params.Result = result

	var (
		res  = make(chan error, 1)
		got  struct{ status outcome.FileStatus }
		summ int
	)
	go func() {
		r, err := p.Process(ctx, params)
		got.status, summ = r.Status, r.Summary.Rows
		res <- err
	}()
	select {
	case <-result.writing:
	case err := <-res:
		t.Fatalf("Process ended before writing the result: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the result file was not written within 60 s")
	}
	// The database goes away while the result is written: the session reading
	// the outcomes is terminated.
	var pid int32
	err := b.db.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1
		AND datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()`, appName).Scan(&pid)
	if err != nil {
		t.Fatalf("no session of the pipeline is reading outcomes: %v", err)
	}
	if _, err := b.db.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	close(result.release)
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Process did not end within 60 s of the retry")
	}

	if !strings.Contains(b.log.String(), "transient failure; retrying") {
		t.Errorf("the broken result was not retried:\n%s", b.log.String())
	}
	text := result.String()
	if n := strings.Count(text, "ActionId,Amount,Reason,Line"); n != 1 {
		t.Errorf("the result file has %d headers, want 1", n)
	}
	if n := strings.Count(text, "\r\n"); n != rows+1 {
		t.Errorf("the result file has %d lines, want a header and %d rows", n, rows)
	}
	// What this run did: it applied the file.
	if got.status != outcome.Completed || summ != rows {
		t.Errorf("Process says %s with %d rows, want COMPLETED with %d", got.status, summ, rows)
	}
}

func TestAQuoteNeverClosedRejectsOnlyItsLine(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	ctx := context.Background()
	// 5001 names a quote that is never closed; 5002 and 5003 are good reversals.
	path := b.write(t, "quote.csv", []byte("ActionId,Amount,Reason\n5001,\"0,ITEM_RETURNED\n5002,,ITEM_RETURNED\n5003,,ITEM_RETURNED\n"))
	result := b.result(t)
	params := b.params(path, "")
	params.Result = result
	res, err := p.Process(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Summary; res.Status != outcome.Completed || s.Rows != 3 || s.Applied != 2 || s.Rejected != 1 || s.ByCode[outcome.MalformedRow] != 1 {
		t.Errorf("result %+v, want 3 rows: 2 applied, line 2 MALFORMED_ROW", res)
	}
	lines := strings.Split(strings.TrimSpace(result.String()), "\r\n")
	if len(lines) != 4 || !strings.Contains(lines[1], ",2,REJECTED,MALFORMED_ROW,") || !strings.Contains(lines[1], "never closed") ||
		!strings.Contains(lines[2], ",3,APPLIED,") || !strings.Contains(lines[3], ",4,APPLIED,") {
		t.Errorf("result file:\n%s", result.String())
	}
	if n := b.queryInt(t, "SELECT count(*) FROM actions WHERE id IN (5002, 5003) AND state = 'REVERSED'"); n != 2 {
		t.Errorf("%d of the rows after the open quote were applied, want 2", n)
	}
	if n := b.queryInt(t, "SELECT count(*) FROM actions WHERE id = 5001 AND state = 'REVERSED'"); n != 0 {
		t.Error("the row with the open quote was applied")
	}
}

func TestAReasonQuotingBytesThatAreNotTextIsStoredAndPrintedSafely(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	ctx := context.Background()
	// A mail from an old mailer: the sender's name in raw 8-bit, quoted by the refusal.
	params := b.params(b.fixture(t, "acme_returns.csv"), "")
	params.Refuse = &processors.FileError{Code: outcome.SenderNotAllowed,
		Reason: "the sender \"M\xfcller\" <m@x.example> is not allowed\n\u202eFORGED"}
	res, err := p.Process(ctx, params)
	if err != nil {
		t.Fatalf("the quarantine failed: %v", err)
	}
	want := `the sender "M\xfcller" <m@x.example> is not allowed\n\u202eFORGED`
	if res.Status != outcome.Quarantined || res.Reason != want {
		t.Errorf("result %+v, want QUARANTINED with reason %q", res, want)
	}
	var status, reason string
	if err := b.db.QueryRow(ctx, "SELECT status, reason FROM received_files WHERE id = $1", res.FileID).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	if status != "QUARANTINED" || reason != want || !utf8.ValidString(reason) {
		t.Errorf("stored %s %q, want QUARANTINED %q", status, reason, want)
	}
	if n := b.queryInt(t, "SELECT count(*) FROM received_files WHERE status = 'RECEIVED'"); n != 0 {
		t.Errorf("%d files left RECEIVED, to be retried forever", n)
	}
}

func TestAResultIsWrittenAsTheBrandsFileWas(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	ctx := context.Background()
	// globex writes windows-1252, semicolons and decimal commas, with its own headers.
	globex := b.cfgBrand(t, "globex")
	actions := b.write(t, "globex_actions.csv", []byte("ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency\n"+
		"7001,55,2001,B-1,2026-11-02T10:00:00+01:00,100.00,EUR\n"))
	if res, err := p.Process(ctx, pipeline.Params{Brand: "globex", Format: pipeline.ExportFormat(globex), Source: "test",
		Actor: "test", Path: actions, Kind: processors.Actions}); err != nil || res.Summary.Applied != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	body := "Bestellnummer;Action Tracker;Betrag;Grund;Notiz\r\nB-1;2001;80,50;ORDER_UPDATE;Größe geändert\r\n"
	latin, err := charmap.Windows1252.NewEncoder().String(body)
	if err != nil {
		t.Fatal(err)
	}
	result := b.result(t)
	res, err := p.Process(ctx, pipeline.Params{Brand: "globex", Format: pipeline.Format(globex), Source: "test",
		Actor: "test", Path: b.write(t, "retouren.csv", []byte(latin)), Result: result})
	if err != nil || res.Summary.Applied != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	got, err := charmap.Windows1252.NewDecoder().String(result.String())
	if err != nil {
		t.Fatal(err)
	}
	want := "Bestellnummer;Action Tracker;Betrag;Grund;Notiz;Line;Outcome;ErrorCode;Message;ResultActionId;OldAmount;NewAmount;OldPayout;NewPayout\r\n" +
		"B-1;2001;80,50;ORDER_UPDATE;Größe geändert;2;APPLIED;;;7001;100,00;80,50;10,00;8,05\r\n"
	if got != want {
		t.Errorf("result file:\n%q\nwant\n%q", got, want)
	}
}
