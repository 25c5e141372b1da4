package sourcetest

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// Files run again by ops (poller.Reprocess, poller.RetryRejected) are new
// files no source lists: the source answers them from what was recorded
// as the brand's file was received (ingest.File.Reply), after the file was
// moved away, the message filed, the source restarted.

// unmendedFile is a file of acme's whose first column no alias names yet.
const unmendedFile = "Vorgang,Reason,Note\n5001,RETURNED,mended\n"

// mendAcme gives acme the alias unmendedFile needs, as ops would in its config.
func (h *Harness) mendAcme() {
	h.t.Helper()
	acme, err := h.Poller.Config.Brand("acme")
	if err != nil {
		h.t.Fatal(err)
	}
	acme.FileFormat.Aliases = map[string]string{"Vorgang": "ActionId"}
}

// answerThroughTheSource lets the poller answer a file no poll lists
// (Poller.Answer) through the source under test, whatever it is then.
func (h *Harness) answerThroughTheSource() {
	h.Poller.Config.Sources = append(h.Poller.Config.Sources, *h.Cfg)
	h.Poller.OpenSource = func(sc *config.Source) (ingest.Source, error) {
		if sc.Name != h.Cfg.Name {
			return nil, fmt.Errorf("the test has no source %s", sc.Name)
		}
		return keepOpen{h.Src}, nil
	}
}

// keepOpen is the test's source, which Answer's Close leaves open.
type keepOpen struct{ ingest.Source }

func (keepOpen) Close() error { return nil }

// importAcmeActions loads acme actions of 50.00 with these ids, as a late
// tracking export would.
func (h *Harness) importAcmeActions(ids ...int) {
	h.t.Helper()
	body := "ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency,Payout,State\n"
	for _, id := range ids {
		body += fmt.Sprintf("%d,301,1001,ORD-%d,2026-11-02T10:15:00-05:00,50.00,USD,,PENDING\n", id, id)
	}
	path := filepath.Join(h.base, fmt.Sprintf("late-actions-%d.csv", ids[0]))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	acme, _ := h.Poller.Config.Brand("acme")
	res, err := h.pipeline.Process(context.Background(), pipeline.Params{Brand: "acme", Format: pipeline.ExportFormat(acme),
		Source: "cli", Actor: "cli:test", Path: path, Kind: processors.Actions})
	if err != nil || res.Summary.Applied != len(ids) {
		h.t.Fatalf("import: %+v, %v", res, err)
	}
}

// resultRows parses a result file into its rows by their Line.
func resultRows(t *testing.T, body string) map[string]map[string]string {
	t.Helper()
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err != nil || len(records) < 1 {
		t.Fatalf("result %q: %v", body, err)
	}
	rows := map[string]map[string]string{}
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, h := range records[0] {
			row[h] = rec[i]
		}
		rows[row["Line"]] = row
	}
	return rows
}

// wantResultRows fails the test unless the result holds exactly these
// lines, each with its outcome and code ("APPLIED", "REJECTED ACTION_NOT_FOUND").
func wantResultRows(t *testing.T, body string, want map[string]string) map[string]map[string]string {
	t.Helper()
	rows := resultRows(t, body)
	got := map[string]string{}
	for line, r := range rows {
		got[line] = strings.TrimSpace(r["Outcome"] + " " + r["ErrorCode"])
	}
	if len(got) != len(want) {
		t.Fatalf("result rows %v; want %v", got, want)
	}
	for line, w := range want {
		if got[line] != w {
			t.Fatalf("result rows %v; want %v", got, want)
		}
	}
	return rows
}

// threeReturns is a file of three reversals: 5001 is tracked, 99001 and
// 99002 are not yet.
const threeReturns = "ActionId,Reason,Note\n5001,RETURNED,a\n99001,RETURNED,b\n99002,RETURNED,c\n"

func (h *Harness) reversals(id int) int64 {
	h.t.Helper()
	return h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = $1 AND kind = 'REVERSE'", id)
}

// wantRefused fails the test unless err is a refusal saying says.
func wantRefused(t *testing.T, err error, says string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), says) {
		t.Fatalf("error %v; want a refusal saying %q", err, says)
	}
}

func runReruns(t *testing.T, newSource NewSource) {
	t.Run("AQuarantinedFileReprocessedOnceItsConfigIsMendedIsAnsweredThoughNoLongerListed", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.answerThroughTheSource()
		h.Put("vorgang.csv", unmendedFile, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "vorgang.csv", outcome.Quarantined)
		orig := rep.Files[0].Result.FileID
		h.readResult("receipt_vorgang_*.csv")
		h.wantFiles(filepath.Join(h.Dir, "failed"), []string{"vorgang.csv"})

		h.mendAcme()
		ctx := context.Background()
		r, err := h.Poller.Reprocess(ctx, orig, "cli:ops")
		if err != nil || r.AnswerErr != nil || r.File.Status != outcome.Completed || r.File.ReprocessOf != orig ||
			r.Result.Summary.Applied != 1 || r.File.AnsweredAt.IsZero() {
			t.Fatalf("reprocess: %+v, %v", r, err)
		}
		wantResultRows(t, h.readResult(fmt.Sprintf("result_vorgang_%d.csv", r.File.ID)), map[string]string{"2": "APPLIED"})
		if got := h.queryText("SELECT actor FROM ledger_events WHERE action_id = 5001 AND kind = 'REVERSE'"); got != "cli:ops" {
			t.Errorf("actor %q; want who asked", got)
		}
		h.wantFiles(filepath.Join(h.Dir, "failed"), []string{"vorgang.csv"})
		_, err = h.Poller.Reprocess(ctx, orig, "cli:ops")
		wantRefused(t, err, fmt.Sprintf("it was reprocessed as file %d, which ended COMPLETED", r.File.ID))
		if rep := h.Poll(); len(rep.Files) != 0 {
			t.Errorf("a poll after the reprocess: %+v", rep.Files)
		}
	})

	t.Run("RejectedRowsRetriedOnceTheActionsCameAreAnsweredAtTheirOwnLines", func(t *testing.T) {
		t.Parallel()
		h := Setup(t, newSource)
		h.answerThroughTheSource()
		h.Put("returns.csv", threeReturns, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "returns.csv", outcome.Completed)
		orig := rep.Files[0].Result.FileID
		ctx := context.Background()

		h.importAcmeActions(99001)
		r, err := h.Poller.RetryRejected(ctx, orig, "web:alice")
		if err != nil || r.AnswerErr != nil || r.Rows != 2 || r.File.RetryOf != orig || r.File.Status != outcome.Completed {
			t.Fatalf("retry: %+v, %v", r, err)
		}
		rows := wantResultRows(t, h.readResult(fmt.Sprintf("result_returns_retry_%d.csv", r.File.ID)),
			map[string]string{"3": "APPLIED", "4": "REJECTED ACTION_NOT_FOUND"})
		if rows["3"]["Note"] != "b" || rows["4"]["ActionId"] != "99002" {
			t.Errorf("the result's rows are not the original's: %v", rows)
		}

		// A second retry (asked of the first: its original's) holds only the row still rejected.
		h.importAcmeActions(99002)
		r2, err := h.Poller.RetryRejected(ctx, r.File.ID, "web:alice")
		if err != nil || r2.Of != orig || r2.Rows != 1 || r2.AnswerErr != nil {
			t.Fatalf("second retry: %+v, %v", r2, err)
		}
		wantResultRows(t, h.readResult(fmt.Sprintf("result_returns_retry_%d.csv", r2.File.ID)), map[string]string{"4": "APPLIED"})
		_, err = h.Poller.RetryRejected(ctx, orig, "web:alice")
		wantRefused(t, err, "none of its rows is rejected")
		for _, id := range []int{5001, 99001, 99002} {
			if n := h.reversals(id); n != 1 {
				t.Errorf("%d reversals of %d; want 1", n, id)
			}
		}
		if got := h.queryText("SELECT actor FROM ledger_events WHERE action_id = 99002 AND kind = 'REVERSE'"); got != "web:alice" {
			t.Errorf("actor %q; want who asked", got)
		}
	})
}

func runMailReruns(t *testing.T, srv MailServer) {
	t.Run("AQuarantinedAttachmentReprocessedAfterARestartIsAnsweredInReplyToItsMessage", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.answerThroughTheSource()
		id := h.Deliver(Mail{Files: []MailFile{{"vorgang.csv", unmendedFile}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "vorgang.csv", outcome.Quarantined)
		orig := rep.Files[0].Result.FileID
		h.WantReply(acmeSender, id, "receipt_vorgang_*.csv")
		h.WantMailbox(h.Cfg.QuarantineMailbox, 1)

		h.mendAcme()
		h.Restart() // a source that never listed the message
		r, err := h.Poller.Reprocess(h.Context(), orig, "web:alice")
		if err != nil || r.AnswerErr != nil || r.File.Status != outcome.Completed {
			t.Fatalf("reprocess: %+v, %v", r, err)
		}
		text, result := h.WantReplyText(acmeSender, id, fmt.Sprintf("result_vorgang_%d.csv", r.File.ID))
		wantResultRows(t, result, map[string]string{"2": "APPLIED"})
		if !strings.Contains(text, "vorgang.csv") {
			t.Errorf("the reply does not name the file:\n%s", text)
		}
		if n := h.RepliesTo(id); n != 2 {
			t.Errorf("%d replies to the message; want the receipt and the result", n)
		}
	})

	t.Run("RetriedRowsOfAMailedFileAreAnsweredInReplyToItsMessage", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.answerThroughTheSource()
		id := h.Deliver(Mail{Files: []MailFile{{"returns.csv", threeReturns}, {"logo.png", "\x89PNG"}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "returns.csv", outcome.Completed)
		orig := rep.Files[0].Result.FileID
		h.WantReply(acmeSender, id, "result_returns_*.csv")
		h.WantMailbox(h.Cfg.ProcessedMailbox, 1)

		h.importAcmeActions(99001, 99002)
		h.Restart()
		r, err := h.Poller.RetryRejected(h.Context(), orig, "web:alice")
		if err != nil || r.AnswerErr != nil || r.Rows != 2 {
			t.Fatalf("retry: %+v, %v", r, err)
		}
		text, result := h.WantReplyText(acmeSender, id, fmt.Sprintf("result_returns_retry_%d.csv", r.File.ID))
		wantResultRows(t, result, map[string]string{"3": "APPLIED", "4": "APPLIED"})
		if !strings.Contains(text, "logo.png") {
			t.Errorf("the reply does not name what was not taken, as the first did:\n%s", text)
		}
		for _, a := range []int{5001, 99001, 99002} {
			if n := h.reversals(a); n != 1 {
				t.Errorf("%d reversals of %d; want 1", n, a)
			}
		}
	})

	t.Run("ASenderRefusedIsNeverAnsweredNorReprocessed", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.answerThroughTheSource()
		h.Deliver(Mail{From: "mallory@evil.example", Files: []MailFile{{"returns.csv", ReturnsFile(5001, "x")}}}, time.Hour)
		h.Poll()
		refused := h.WantRefused(h.Poll(), outcome.SenderNotAllowed)
		var reply []byte
		if err := h.db.QueryRow(context.Background(), "SELECT coalesce(reply::text, '')::bytea FROM received_files WHERE id = $1",
			refused.Result.FileID).Scan(&reply); err != nil || bytes.Contains(reply, []byte("evil")) {
			t.Errorf("the refused sender was recorded to answer: %s (%v)", reply, err)
		}
		_, err := h.Poller.Reprocess(h.Context(), refused.Result.FileID, "web:alice")
		wantRefused(t, err, "its source refused it (SENDER_NOT_ALLOWED)")
		if err := h.Poller.Answer(h.Context(), refused.Result.FileID); err != nil {
			t.Errorf("answer: %v", err)
		}
		h.NoMailSent()
	})
}
