package sourcetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/internal/tlstest"
	"github.com/returnsd/returnsd/mailer/smtptest"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
)

// MailServer is the mail server a mail source under test reads, as the mail
// suite needs it: where the source connects (Configure, NewSource), and what a
// brand's mail reaching the mailbox and a person with a mail client do
// (Create, Append, Messages, Recreate).
type MailServer interface {
	// Configure points cfg at the server: Type, Address, TLS, CAFile,
	// Username and the password.
	Configure(cfg *config.Source)
	// NewSource returns the source under test for cfg (as Configure and the
	// suite left it), mailing results through smtp, and registers its Close
	// with t.Cleanup. The suite calls it again to restart the source.
	NewSource(t *testing.T, cfg *config.Source, smtp *config.SMTP) ingest.Source
	// Create makes an empty mailbox.
	Create(mailbox string) error
	// Append puts msg into mailbox with the arrival time (INTERNALDATE) date.
	Append(mailbox string, msg []byte, date time.Time) error
	// Messages returns the messages of mailbox, oldest first, without
	// changing them (none if the mailbox does not exist).
	Messages(mailbox string) ([]StoredMessage, error)
	// Recreate deletes mailbox and creates it empty, with a new UIDVALIDITY.
	Recreate(mailbox string) error
}

// StoredMessage is a message in a mailbox, as a mail client sees it.
type StoredMessage struct {
	Seen bool
	Date time.Time // INTERNALDATE
	Body []byte
}

// The routes of the mail suite: one mailbox, two brands.
const (
	AcmeAddress   = "returns+acme@platform.example"
	GlobexAddress = "returns+globex@platform.example"
	AuthservID    = "mx.platform.example"
	acmeSender    = "returns@acme.example"
)

var mailboxSeq atomic.Int64

// RunMail runs the conformance suite's behaviours that make sense for a mail
// source, and the ones only mail has, against srv.
func RunMail(t *testing.T, srv MailServer) {
	runMailReruns(t, srv)

	t.Run("AStableMessageIsTakenOnTheSecondListingAppliedAnsweredAndMoved", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		id := h.Deliver(Mail{Files: []MailFile{{"returns.csv", ReturnsFile(5001, "first")}}}, time.Hour)
		h.WantStatus(h.Poll(), "returns.csv", poller.StatusWaiting)
		if n := h.QueryInt("SELECT count(*) FROM received_files WHERE source = $1", h.Cfg.Name); n != 0 {
			t.Fatalf("a message listed once was received: %d files", n)
		}
		h.WantStatus(h.Poll(), "returns.csv", outcome.Completed)
		h.WantMailbox(h.Cfg.Mailbox, 0)
		if m := h.WantMailbox(h.Cfg.ProcessedMailbox, 1); !m[0].Seen {
			t.Error("the processed message is not flagged \\Seen")
		}
		h.WantMailbox(h.Cfg.QuarantineMailbox, 0)
		reply := h.WantReply(acmeSender, id, "result_returns_*.csv")
		if !strings.Contains(reply, "APPLIED") || !strings.Contains(reply, "5001") {
			t.Errorf("result file:\n%s", reply)
		}
		if got := h.queryText("SELECT actor FROM ledger_events WHERE action_id = 5001 AND kind = 'REVERSE'"); got != "source:"+h.Cfg.Name {
			t.Errorf("actor %q", got)
		}
		if got := h.queryText("SELECT b.slug FROM received_files f JOIN brands b ON b.id = f.brand_id WHERE f.source = $1", h.Cfg.Name); got != "acme" {
			t.Errorf("brand %q", got)
		}
	})

	t.Run("TheRecipientAddressDecidesTheBrand", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{From: "returns@globex.example", To: "Returns <" + strings.ToUpper(GlobexAddress) + ">",
			Files: []MailFile{{"globex.csv", ReturnsFile(9001, "g")}}}, time.Hour)
		h.Deliver(Mail{Headers: []string{"Delivered-To: " + AcmeAddress}, To: "undisclosed-recipients:;",
			Files: []MailFile{{"acme.csv", ReturnsFile(5001, "a")}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "globex.csv", outcome.Completed)
		h.WantStatus(rep, "acme.csv", outcome.Completed)
		for name, brand := range map[string]string{"globex.csv": "globex", "acme.csv": "acme"} {
			got := h.queryText("SELECT b.slug FROM received_files f JOIN brands b ON b.id = f.brand_id WHERE f.name = $1", name)
			if got != brand {
				t.Errorf("%s went to brand %q; want %s", name, got, brand)
			}
		}
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = 5001 AND kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals of acme's 5001", n)
		}
	})

	t.Run("ListingAndFetchingLeaveTheMessageUnreadUntilItIsProcessed", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		body := ReturnsFile(5001, "peek")
		h.Deliver(Mail{Files: []MailFile{{"peek.csv", body}}}, time.Hour)
		files, err := h.Src.List(h.Context())
		if err != nil || len(files) != 1 {
			t.Fatalf("list: %v %+v", err, files)
		}
		f := files[0]
		if f.Name != "peek.csv" || f.Size != int64(len(body)) || f.Brand != "acme" || f.Refusal != nil ||
			f.ModTime.Sub(time.Now().Add(-time.Hour)).Abs() > 2*time.Second {
			t.Errorf("listed %+v", f)
		}
		var buf bytes.Buffer
		if err := h.Src.Fetch(h.Context(), f, &buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != body {
			t.Errorf("fetched %q; want %q", buf.String(), body)
		}
		if m := h.WantMailbox(h.Cfg.Mailbox, 1); m[0].Seen {
			t.Fatal("listing or fetching flagged the message \\Seen")
		}
		h.Poll()
		h.WantStatus(h.Poll(), "peek.csv", outcome.Completed)
		if m := h.WantMailbox(h.Cfg.ProcessedMailbox, 1); !m[0].Seen {
			t.Error("the processed message is not \\Seen")
		}
	})

	t.Run("FetchDeliversTheListedBytesOfALargeAttachment", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		body := strings.Repeat(ReturnsFile(5001, "big"), 20000) // ~0.5 MB
		h.Deliver(Mail{Files: []MailFile{{"big.csv", body}}}, time.Hour)
		files, err := h.Src.List(h.Context())
		if err != nil || len(files) != 1 || files[0].Size != int64(len(body)) {
			t.Fatalf("list: %v %+v", err, files)
		}
		var buf bytes.Buffer
		if err := h.Src.Fetch(h.Context(), files[0], &buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != body {
			t.Errorf("fetched %d bytes; want %d", buf.Len(), len(body))
		}
	})

	t.Run("TheSameBytesUnderANewNameAreNotAppliedTwice", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		body := ReturnsFile(5002, "twice")
		h.Deliver(Mail{Files: []MailFile{{"monday.csv", body}}}, time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "monday.csv", outcome.Completed)
		id := h.Deliver(Mail{Files: []MailFile{{"tuesday.csv", body}}}, time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "tuesday.csv", outcome.DuplicateFile)
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = 5002 AND kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals of 5002; want 1", n)
		}
		if r := h.WantReply(acmeSender, id, "result_tuesday_*.csv"); !strings.Contains(r, "APPLIED") {
			t.Errorf("the duplicate's result should repeat the original's outcomes:\n%s", r)
		}
		h.WantMailbox(h.Cfg.ProcessedMailbox, 2)
	})

	t.Run("ACrashBetweenCommitAndAcknowledgementIsHarmless", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{Files: []MailFile{{"crash.csv", ReturnsFile(5001, "c")}}}, time.Hour)
		h.Poll()
		failing := &faultySource{Source: h.Src, ackErr: errors.New("crashed before ack")}
		rep, _ := h.PollWith(failing)
		h.WantStatus(rep, "crash.csv", outcome.Completed)
		if rep.Files[0].AckErr == nil {
			t.Fatal("the failed ack is not reported")
		}
		h.WantMailbox(h.Cfg.Mailbox, 1)
		h.Restart()
		h.WantStatus(h.Poll(), "crash.csv", poller.StatusAcknowledged)
		h.WantMailbox(h.Cfg.Mailbox, 0)
		h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals; want 1", n)
		}
	})

	t.Run("ACrashBetweenCommitAndTheDoneRecordIsHarmless", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		id := h.Deliver(Mail{Files: []MailFile{{"crash.csv", ReturnsFile(5001, "c")}}}, time.Hour)
		h.Poll()
		failing := &faultySource{Source: h.Src, putErr: errors.New("crashed before the result was mailed")}
		rep, err := h.PollWith(failing)
		if err == nil {
			t.Fatal("no error")
		}
		h.WantStatus(rep, "crash.csv", poller.StatusError)
		h.Restart()
		// Received and applied before the crash: not fetched again, answered now.
		h.WantStatus(h.Poll(), "crash.csv", outcome.Completed)
		h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
		if r := h.WantReply(acmeSender, id, "result_crash_*.csv"); !strings.Contains(r, "APPLIED") {
			t.Errorf("result:\n%s", r)
		}
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals; want 1", n)
		}
	})

	t.Run("PathTraversalAttachmentNamesNeverLeaveTheSpool", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{Files: []MailFile{
			{"../escape.csv", ReturnsFile(5001, "e")},
			{"sub/dir.csv", ReturnsFile(5002, "d")},
			{`..\evil.csv`, ReturnsFile(5003, "v")},
			{"good.csv", ReturnsFile(5007, "g")},
		}}, time.Hour)
		h.Deliver(Mail{Files: []MailFile{{"../only.csv", ReturnsFile(5001, "o")}}}, 2*time.Hour)
		counting := &faultySource{Source: h.Src}
		h.PollWith(counting)
		rep, err := h.PollWith(counting)
		if err != nil {
			t.Fatal(err)
		}
		h.WantStatus(rep, "good.csv", outcome.Completed)
		refused := h.WantRefused(rep, outcome.NoAttachment)
		if !strings.Contains(refused.Result.Reason, "../only.csv") {
			t.Errorf("reason %q does not name the refused attachment", refused.Result.Reason)
		}
		for _, f := range rep.Files {
			if !ingest.SafeName(f.Name) {
				t.Errorf("a hostile name was taken: %+v", f)
			}
		}
		for _, name := range counting.fetched {
			if !ingest.SafeName(name) {
				t.Errorf("%q was fetched", name)
			}
		}
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals; want good.csv's only", n)
		}
		ctx := h.Context()
		hostile := ingest.File{Name: "../escape.csv", Path: "../escape.csv"}
		for _, err := range []error{
			h.Src.Fetch(ctx, hostile, io.Discard),
			h.Src.Ack(ctx, hostile, ingest.Processed),
			h.Src.Put(ctx, hostile, "../escape.csv", strings.NewReader("x")),
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
		// Both messages held something that could not be taken: ops must see them.
		h.WantMailbox(h.Cfg.QuarantineMailbox, 2)
		h.WantMailbox(h.Cfg.Mailbox, 0)
	})

	t.Run("AnAttachmentOverTheSizeLimitIsQuarantinedWithoutFetchingIt", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.SetMaxFileBytes(10)
		h.Deliver(Mail{Files: []MailFile{{"huge.csv", ReturnsFile(5001, "huge")}}}, time.Hour)
		counting := &faultySource{Source: h.Src}
		h.PollWith(counting)
		rep, _ := h.PollWith(counting)
		h.WantStatus(rep, "huge.csv", outcome.Quarantined)
		if rep.Files[0].Result.Code != outcome.FileTooLarge || counting.fetches.Load() != 0 {
			t.Errorf("code %s, %d fetches", rep.Files[0].Result.Code, counting.fetches.Load())
		}
		h.WantMailbox(h.Cfg.QuarantineMailbox, 1)
		// The sender is told, with the limit: a receipt, not a result.
		if r := h.WantReply(acmeSender, "", "receipt_huge_*.csv"); !strings.Contains(r, ",QUARANTINED,FILE_TOO_LARGE,") {
			t.Errorf("receipt:\n%s", r)
		}
	})

	t.Run("APollTakesABoundedNumberOfFiles", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Poller.MaxFilesPerPoll = 1
		h.Deliver(Mail{Files: []MailFile{{"one.csv", ReturnsFile(5001, "1")}}}, 2*time.Hour)
		h.Deliver(Mail{Files: []MailFile{{"two.csv", ReturnsFile(5002, "2")}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "one.csv", outcome.Completed)
		h.WantStatus(rep, "two.csv", poller.StatusDeferred)
		h.WantStatus(h.Poll(), "two.csv", outcome.Completed)
		h.WantMailbox(h.Cfg.ProcessedMailbox, 2)
	})

	t.Run("IncludeAndExcludeDecideWhichAttachmentsAreTaken", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv, func(c *config.Source) { c.Include = []string{"*.csv"} })
		id := h.Deliver(Mail{Files: []MailFile{{"returns.csv", ReturnsFile(5001, "r")}, {"logo.png", "\x89PNG not a file for us"},
			{"notes.txt", ReturnsFile(5002, "not included")}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "returns.csv", outcome.Completed)
		if len(rep.Files) != 1 {
			t.Errorf("report %+v; want returns.csv only", rep.Files)
		}
		h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
		text, _ := h.WantReplyText(acmeSender, id, "result_returns_*.csv")
		if want := "ignored: logo.png (image), notes.txt (matches no include pattern: *.csv)"; !strings.Contains(text, want) {
			t.Errorf("the reply does not say %q:\n%s", want, text)
		}
	})

	t.Run("AfterDeleteDeletesTheMessage", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv, func(c *config.Source) { c.After = config.AfterDelete })
		h.Deliver(Mail{Files: []MailFile{{"del.csv", ReturnsFile(5001, "d")}}}, time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "del.csv", outcome.Completed)
		h.WantMailbox(h.Cfg.Mailbox, 0)
		h.WantMailbox(h.Cfg.ProcessedMailbox, 0)
	})

	t.Run("AfterLeaveLeavesTheMessageReadAndNeverTakesItTwice", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv, func(c *config.Source) { c.After = config.AfterLeave })
		h.Deliver(Mail{Files: []MailFile{{"stay.csv", ReturnsFile(5001, "s")}}}, time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "stay.csv", outcome.Completed)
		if rep := h.Poll(); len(rep.Files) != 0 {
			t.Errorf("third poll: %+v", rep.Files)
		}
		if m := h.WantMailbox(h.Cfg.Mailbox, 1); !m[0].Seen {
			t.Error("the message left in place is not \\Seen")
		}
		if n := h.QueryInt("SELECT count(*) FROM received_files WHERE source = $1", h.Cfg.Name); n != 1 {
			t.Errorf("%d received files; want 1", n)
		}
	})

	t.Run("AnUnknownSenderIsQuarantinedAndNeverApplied", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{From: "Mallory <mallory@evil.example>", Files: []MailFile{{"returns.csv", ReturnsFile(5001, "m")}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		refused := h.WantRefused(rep, outcome.SenderNotAllowed)
		if !strings.Contains(refused.Result.Reason, "mallory@evil.example") {
			t.Errorf("reason %q does not name the sender", refused.Result.Reason)
		}
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 0 {
			t.Errorf("%d reversals from an unknown sender", n)
		}
		kept := h.WantMailbox(h.Cfg.QuarantineMailbox, 1)
		// The whole message is kept in acme's ledger, for ops to download.
		if n := h.QueryInt(`SELECT count(*) FROM received_files f JOIN brands b ON b.id = f.brand_id
			WHERE b.slug = 'acme' AND f.status = 'QUARANTINED' AND f.reason_code = 'SENDER_NOT_ALLOWED'
			AND f.bytes_kept AND f.size = $1`, len(kept[0].Body)); n != 1 {
			t.Errorf("%d quarantined files holding the message; want 1", n)
		}
		h.NoMailSent()
	})

	t.Run("WithRequireDMARCOnlyTheReceivingServersPassCounts", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv, func(c *config.Source) { c.RequireDMARC, c.AuthservID = true, AuthservID })
		ar := "Authentication-Results: "
		h.Deliver(Mail{Headers: []string{ar + AuthservID + "; spf=pass smtp.mailfrom=acme.example;\r\n dkim=pass header.d=acme.example; dmarc=pass (p=reject) header.from=acme.example"},
			Files: []MailFile{{"pass.csv", ReturnsFile(5001, "pass")}}}, time.Hour)
		h.Deliver(Mail{Headers: []string{ar + AuthservID + "; dmarc=fail header.from=acme.example"},
			Files: []MailFile{{"fail.csv", ReturnsFile(5002, "fail")}}}, time.Hour)
		h.Deliver(Mail{Headers: []string{ar + "evil.example; dmarc=pass header.from=acme.example"},
			Files: []MailFile{{"foreign.csv", ReturnsFile(5003, "foreign")}}}, time.Hour)
		h.Deliver(Mail{Headers: []string{ar + AuthservID + "; dmarc=fail header.from=acme.example",
			ar + AuthservID + "; dmarc=pass header.from=acme.example"},
			Files: []MailFile{{"forged.csv", ReturnsFile(5007, "forged")}}}, time.Hour)
		h.Deliver(Mail{Headers: []string{ar + AuthservID + "; dmarc=pass header.from=evil.example"},
			Files: []MailFile{{"other-domain.csv", ReturnsFile(5009, "other")}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "pass.csv", outcome.Completed)
		var refused int
		for _, f := range rep.Files {
			if strings.HasSuffix(f.Name, ".eml") {
				refused++
				if f.Status != string(outcome.Quarantined) || f.Result.Code != outcome.SenderNotAuthenticated {
					t.Errorf("%s: %s %s %s", f.Name, f.Status, f.Result.Code, f.Result.Reason)
				}
			}
		}
		if refused != 4 || len(rep.Files) != 5 {
			t.Errorf("%d refused of %+v; want 4 and pass.csv", refused, rep.Files)
		}
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 1 {
			t.Errorf("%d reversals; want pass.csv's only", n)
		}
		h.WantMailbox(h.Cfg.QuarantineMailbox, 4)
		h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
	})

	t.Run("AMessageNoRouteTakesIsQuarantinedUnrecordedAndReported", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{To: "someone@else.example", Files: []MailFile{{"lost.csv", ReturnsFile(5001, "l")}}}, time.Hour)
		h.Deliver(Mail{To: AcmeAddress + ", " + GlobexAddress, Files: []MailFile{{"both.csv", ReturnsFile(5002, "b")}}}, 2*time.Hour)
		h.Poll()
		rep, err := h.PollWith(h.Src)
		if err != nil {
			t.Fatalf("a message no route takes failed the poll: %v", err)
		}
		var reasons []string
		for _, f := range rep.Files {
			if f.Status != string(outcome.Quarantined) || f.Result.Code != outcome.NoRoute || f.Err != nil || f.AckErr != nil {
				t.Errorf("%+v", f)
			}
			reasons = append(reasons, f.Result.Reason)
		}
		if len(reasons) != 2 || !strings.Contains(strings.Join(reasons, "|"), "someone@else.example") ||
			!strings.Contains(strings.Join(reasons, "|"), "more than one brand") {
			t.Errorf("reasons %q", reasons)
		}
		if n := h.QueryInt("SELECT count(*) FROM received_files"); n != 1 { // acme's fixture actions only
			t.Errorf("%d received files; a message without a brand must not be received", n)
		}
		h.WantMailbox(h.Cfg.QuarantineMailbox, 2)
		h.WantMailbox(h.Cfg.Mailbox, 0)
		if rep := h.Poll(); len(rep.Files) != 0 {
			t.Errorf("third poll: %+v", rep.Files)
		}
		h.NoMailSent()
	})

	t.Run("AMessageWithoutAttachmentIsQuarantinedWhole", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{Subject: "returns for today", Text: "I forgot the file, sorry."}, time.Hour)
		h.Poll()
		refused := h.WantRefused(h.Poll(), outcome.NoAttachment)
		kept := h.WantMailbox(h.Cfg.QuarantineMailbox, 1)
		var size int64
		var name string
		if err := h.db.QueryRow(h.Context(), "SELECT size, name FROM received_files WHERE id = $1",
			refused.Result.FileID).Scan(&size, &name); err != nil {
			t.Fatal(err)
		}
		if size != int64(len(kept[0].Body)) || name != refused.Name {
			t.Errorf("received %s of %d bytes; want the whole message, %d bytes", name, size, len(kept[0].Body))
		}
		// An allowed sender who forgot the file is told so.
		if r := h.WantReply(acmeSender, "", "receipt_*.csv"); !strings.Contains(r, ",QUARANTINED,NO_ATTACHMENT,") {
			t.Errorf("receipt:\n%s", r)
		}
	})

	t.Run("AttachmentsInNestedMultipartsAndForwardedMessagesAreTaken", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		forwarded := base64.StdEncoding.EncodeToString([]byte(ReturnsFile(5002, "forwarded")))
		h.Deliver(Mail{Raw: crlf(`From: Acme Returns <returns@acme.example>
To: ` + AcmeAddress + `
Subject: Fwd: returns
Message-ID: <nested-` + uniqueID() + `@acme.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

See attached.
--alt
Content-Type: text/html; charset=utf-8

<p>See attached.</p>
--alt--
--outer
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/csv; charset=utf-8
Content-Disposition: attachment; filename="nested.csv"
Content-Transfer-Encoding: quoted-printable

ActionId,Reason,Note
5001,RETURNED,nested=20qp
--inner--
--outer
Content-Type: message/rfc822

From: someone@acme.example
To: returns@acme.example
Subject: the original
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain

the original message
--fwd
Content-Type: application/octet-stream; name="forwarded.csv"
Content-Transfer-Encoding: base64

` + forwarded + `
--fwd--
--outer--
`)}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "nested.csv", outcome.Completed)
		h.WantStatus(rep, "forwarded.csv", outcome.Completed)
		for _, id := range []int{5001, 5002} {
			if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = $1 AND kind = 'REVERSE'", id); n != 1 {
				t.Errorf("%d reversals of %d", n, id)
			}
		}
		if note := h.queryText("SELECT note FROM ledger_events WHERE action_id = 5001 AND kind = 'REVERSE'"); note != "nested qp" {
			t.Errorf("note %q: the quoted-printable part was not decoded", note)
		}
		h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
	})

	t.Run("RFC2231AndRFC2047FileNamesAreDecoded", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		part := func(header, body string) string {
			return "--b\r\n" + header + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				base64.StdEncoding.EncodeToString([]byte(body)) + "\r\n"
		}
		id := uniqueID()
		raw := crlf("From: returns@acme.example\nTo: "+AcmeAddress+"\nSubject: names\nMessage-ID: <"+id+"@acme.example>\n"+
			"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n") +
			part("Content-Type: text/csv\r\nContent-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.csv", ReturnsFile(5001, "2231")) +
			part("Content-Type: text/csv\r\nContent-Disposition: attachment; filename=\""+mime.BEncoding.Encode("UTF-8", "Rücksendungen.csv")+"\"", ReturnsFile(5002, "2047b")) +
			part("Content-Type: text/csv; name=\"=?ISO-8859-1?Q?retour_=E9t=E9.csv?=\"", ReturnsFile(5003, "2047q")) +
			part("Content-Type: text/csv\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8''%C3%BCber; filename*1=sicht; filename*2=.csv", ReturnsFile(5007, "continued")) +
			"--b--\r\n"
		h.Deliver(Mail{Raw: raw}, time.Hour)
		h.Poll()
		rep := h.Poll()
		for _, name := range []string{"résumé.csv", "Rücksendungen.csv", "retour été.csv", "übersicht.csv"} {
			h.WantStatus(rep, name, outcome.Completed)
		}
		h.WantReply(acmeSender, id+"@acme.example", "result_résumé_*.csv")
	})

	t.Run("AMessageWithTwoAttachmentsIsMovedOnceBothAreDoneEvenAcrossACrash", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		id := h.Deliver(Mail{Files: []MailFile{{"a.csv", ReturnsFile(5001, "a")}, {"b.csv", ReturnsFile(5002, "b")}}}, time.Hour)
		h.Poll()
		// The first ack goes through; the process dies before the second.
		crashing := &faultySource{Source: h.Src, ackErr: errors.New("crashed"), acksBeforeErr: 1}
		rep, _ := h.PollWith(crashing)
		h.WantStatus(rep, "a.csv", outcome.Completed)
		h.WantStatus(rep, "b.csv", outcome.Completed)
		h.WantMailbox(h.Cfg.Mailbox, 1) // not moved while one of its files is not acknowledged
		h.Restart()
		rep = h.Poll()
		if len(rep.Files) != 1 {
			t.Errorf("report %+v; want the unacknowledged file only", rep.Files)
		}
		h.WantMailbox(h.Cfg.Mailbox, 0)
		h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
		for _, action := range []int{5001, 5002} {
			if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = $1 AND kind = 'REVERSE'", action); n != 1 {
				t.Errorf("%d reversals of %d", n, action)
			}
		}
		h.WantReply(acmeSender, id, "result_a_*.csv")
		h.WantReply(acmeSender, id, "result_b_*.csv")
	})

	t.Run("AMessageDeliveredTwiceIsAppliedAndAnsweredOnceAndItsCopiesMovedWithIt", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		const id = "7F3A9C2E-4B1D-4E8F-A6C5-D2B1E0F9A8C7@acme.example"
		raw := CorpusMessage(t, "apple-mail-smime-inline-csv.eml")
		// To and Cc both routed to the mailbox: delivered once per recipient,
		// each copy with its own trace headers; and a copy the client saved.
		h.Deliver(Mail{Raw: "Delivered-To: " + AcmeAddress + "\r\nReceived: from mx.platform.example by imap.platform.example; " +
			"Wed, 18 Mar 2026 16:02:13 +0100\r\n" + raw}, 3*time.Hour)
		h.Deliver(Mail{Raw: "Delivered-To: returns@platform.example\r\nReceived: from mx.platform.example by imap.platform.example; " +
			"Wed, 18 Mar 2026 16:02:14 +0100\r\n" + raw}, 3*time.Hour)
		h.Deliver(Mail{Raw: raw}, 2*time.Hour)
		// Another message reusing the Message-ID with other bytes is not a copy.
		reused := strings.Replace(raw, "5002,RETURNED,apple-inline", "5003,RETURNED,apple-reused", 1)
		h.Deliver(Mail{Raw: reused}, time.Hour)
		h.Poll()
		rep := h.Poll()
		var taken []string
		for _, f := range rep.Files {
			taken = append(taken, f.Name+" "+f.Status)
		}
		if want := []string{"returns.csv COMPLETED", "returns.csv COMPLETED"}; !slices.Equal(taken, want) {
			t.Errorf("report %q; want %q: the delivered message once, and the other message", taken, want)
		}
		if n := h.RepliesTo(id); n != 2 {
			t.Errorf("%d replies; want one for the message delivered three times, one for the other", n)
		}
		for _, action := range []int{5002, 5003} {
			if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = $1 AND kind = 'REVERSE'", action); n != 1 {
				t.Errorf("%d reversals of %d", n, action)
			}
		}
		if n := h.QueryInt("SELECT count(*) FROM received_files WHERE name = 'returns.csv'"); n != 2 {
			t.Errorf("%d files received; want 2", n)
		}
		h.WantMailbox(h.Cfg.Mailbox, 0)
		for _, m := range h.WantMailbox(h.Cfg.ProcessedMailbox, 4) {
			if !m.Seen {
				t.Error("a moved copy is not \\Seen")
			}
		}
		if rep := h.Poll(); len(rep.Files) != 0 {
			t.Errorf("third poll: %+v", rep.Files)
		}
	})

	t.Run("AQuarantinedAttachmentSendsItsMessageToQuarantine", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{Files: []MailFile{{"good.csv", ReturnsFile(5001, "g")}, {"junk.csv", "Foo,Bar\n1,2\n"}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "good.csv", outcome.Completed)
		h.WantStatus(rep, "junk.csv", outcome.Quarantined)
		h.WantMailbox(h.Cfg.QuarantineMailbox, 1)
		h.WantMailbox(h.Cfg.ProcessedMailbox, 0)
		// The sender hears of both: a result and a receipt with the reason.
		h.WantReply(acmeSender, "", "result_good_*.csv")
		if r := h.WantReply(acmeSender, "", "receipt_junk_*.csv"); !strings.Contains(r, ",QUARANTINED,UNKNOWN_KIND,") {
			t.Errorf("receipt:\n%s", r)
		}
	})

	t.Run("AUIDVALIDITYChangeAppliesNothingTwice", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv, func(c *config.Source) { c.After = config.AfterLeave })
		h.Deliver(Mail{Files: []MailFile{{"same-date.csv", ReturnsFile(5001, "1")}}}, 3*time.Hour)
		h.Deliver(Mail{MessageID: "-", Files: []MailFile{{"no-id.csv", ReturnsFile(5002, "2")}}}, 2*time.Hour)
		h.Deliver(Mail{Files: []MailFile{{"new-date.csv", ReturnsFile(5003, "3")}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		for _, name := range []string{"same-date.csv", "no-id.csv", "new-date.csv"} {
			h.WantStatus(rep, name, outcome.Completed)
		}
		// The mailbox is rebuilt (restored from a backup, migrated): the same
		// messages under new UIDs; one of them even with a new arrival time.
		kept := h.WantMailbox(h.Cfg.Mailbox, 3)
		if err := h.Server.Recreate(h.Cfg.Mailbox); err != nil {
			t.Fatal(err)
		}
		for i, m := range kept {
			date := m.Date
			if i == 2 {
				date = time.Now().Add(-30 * time.Minute).Truncate(time.Second)
			}
			if err := h.Server.Append(h.Cfg.Mailbox, m.Body, date); err != nil {
				t.Fatal(err)
			}
		}
		h.Poll()
		rep = h.Poll()
		if got := statusOf(rep, "same-date.csv"); got != "" {
			t.Errorf("same-date.csv: %s; want nothing (known by its Message-ID)", got)
		}
		h.WantStatus(rep, "new-date.csv", poller.StatusAcknowledged) // fetched again, recognised by its bytes
		h.WantStatus(rep, "no-id.csv", outcome.DuplicateFile)        // no Message-ID: the ledger stops it
		for _, action := range []int{5001, 5002, 5003} {
			if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = $1 AND kind = 'REVERSE'", action); n != 1 {
				t.Errorf("%d reversals of %d", n, action)
			}
		}
	})

	runMailCorpus(t, srv)

	t.Run("AnUntrustedCertificateIsRefused", func(t *testing.T) {
		t.Parallel()
		other, err := tlstest.NewCA("not the server's CA")
		if err != nil {
			t.Fatal(err)
		}
		caFile, err := other.WriteCA(t.TempDir(), "other-ca.pem")
		if err != nil {
			t.Fatal(err)
		}
		h := SetupMail(t, srv, func(c *config.Source) { c.CAFile = caFile })
		rep, err := h.PollWith(h.Src)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err %v; want the server's certificate refused", err)
		}
		if len(rep.Files) != 0 {
			t.Errorf("report %+v", rep.Files)
		}
	})

	t.Run("AServerThatIsDownIsAnError", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv, func(c *config.Source) { c.Address = closedAddress(t) })
		rep, err := h.PollWith(h.Src)
		if err == nil || !strings.Contains(err.Error(), string(h.Cfg.Type)+": connect") {
			t.Fatalf("err %v; want a failed connect", err)
		}
		if len(rep.Files) != 0 {
			t.Errorf("report %+v", rep.Files)
		}
	})
}

// MailHarness is one mail test's source, mailboxes, SMTP server, ledger and poller.
type MailHarness struct {
	*Harness
	Server     MailServer
	SMTP       *smtptest.Server
	SMTPConfig *config.SMTP
}

// SetupMail gives a test a fresh ledger, mailboxes of its own on srv (routed
// to acme and globex), an SMTP server for the results, and a source from srv
// configured with edits applied.
func SetupMail(t *testing.T, srv MailServer, edits ...func(*config.Source)) *MailHarness {
	t.Helper()
	h := &MailHarness{Harness: newHarness(t), Server: srv}
	prefix := fmt.Sprintf("t%d-%d", os.Getpid(), mailboxSeq.Add(1))
	src := config.Source{Name: "test-source", Type: config.IMAP,
		Mailbox: prefix + "-inbox", ProcessedMailbox: prefix + "-processed", QuarantineMailbox: prefix + "-quarantine",
		Routes: []config.Route{
			{Recipient: AcmeAddress, Brand: "acme", Senders: []string{"*@acme.example"}},
			{Recipient: GlobexAddress, Brand: "globex", Senders: []string{"returns@globex.example"}},
		},
		After: config.AfterMove, MinAge: config.Duration{Time: time.Minute}, Schedule: config.DefaultSchedule,
		Timeout: config.Duration{Time: 10 * time.Second}}
	srv.Configure(&src)
	for _, e := range edits {
		e(&src)
	}
	if err := srv.Create(src.Mailbox); err != nil {
		t.Fatal(err)
	}
	smtp, err := smtptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := smtp.Stop(); err != nil {
			t.Error(err)
		}
	})
	h.SMTP = smtp
	h.SMTPConfig = &config.SMTP{Address: smtp.Addr, TLS: config.TLSImplicit, CAFile: smtp.CAFile,
		Username: smtp.User, PasswordEnv: config.SecretFromEnv(smtp.Password),
		From: "Returns <returns@platform.example>", Timeout: config.Duration{Time: 10 * time.Second}}
	h.Cfg = &src
	h.Src = srv.NewSource(t, h.Cfg, h.SMTPConfig)
	return h
}

// MailTimeout bounds each call a mail test makes to the source or the
// poller: a server that hangs fails the test with a message instead of
// stalling the run.
const MailTimeout = 2 * time.Minute

// Context is the context of one call of the test to the source or the
// poller: it ends with the test, or after MailTimeout.
func (h *MailHarness) Context() context.Context {
	ctx, cancel := context.WithTimeout(h.t.Context(), MailTimeout)
	h.t.Cleanup(cancel)
	return ctx
}

// Poll polls the source and fails the test on an error.
func (h *MailHarness) Poll() poller.PollReport {
	h.t.Helper()
	rep, err := h.PollWith(h.Src)
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	return rep
}

// PollWith polls src (a wrapper of Src) under the source's config, within MailTimeout.
func (h *MailHarness) PollWith(src ingest.Source) (poller.PollReport, error) {
	return h.Poller.PollOnce(h.Context(), src, h.Cfg, poller.PollOptions{})
}

// Restart replaces the source with a new one, as a restarted daemon has: what
// the old one remembered is gone.
func (h *MailHarness) Restart() {
	h.Src.Close()
	h.Src = h.Server.NewSource(h.t, h.Cfg, h.SMTPConfig)
}

// Mail is a message for Deliver. Zero fields take the defaults noted.
type Mail struct {
	From      string   // default returns@acme.example
	To        string   // default AcmeAddress
	MessageID string   // default a fresh one; "-" for none
	Subject   string   // default "returns"
	Headers   []string // more header lines, written first, e.g. Authentication-Results
	Text      string   // the text part; default "Returns attached."
	Files     []MailFile
	Raw       string // a whole message, instead of all the above
}

// MailFile is an attachment of a Mail, written in base64 with its name in
// RFC 2231 form when it is not ASCII.
type MailFile struct {
	Name string
	Body string
}

// Deliver puts m into the source's mailbox, arrived age ago, and returns its
// Message-ID (without angle brackets; "" for a Raw message or none).
func (h *MailHarness) Deliver(m Mail, age time.Duration) string {
	h.t.Helper()
	raw, id := m.Raw, ""
	if raw == "" {
		raw, id = m.build()
	}
	date := time.Now().Add(-age).Truncate(time.Second)
	if err := h.Server.Append(h.Cfg.Mailbox, []byte(raw), date); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (m Mail) build() (string, string) {
	var b strings.Builder
	for _, l := range m.Headers {
		b.WriteString(l + "\r\n")
	}
	id := m.MessageID
	if id == "" {
		id = uniqueID() + "@acme.example"
	}
	if id != "-" {
		b.WriteString("Message-ID: <" + id + ">\r\n")
	} else {
		id = ""
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n",
		cmpOr(m.From, "Acme Returns <"+acmeSender+">"), cmpOr(m.To, AcmeAddress), cmpOr(m.Subject, "returns"),
		time.Now().Format(time.RFC1123Z))
	text := cmpOr(m.Text, "Returns attached.")
	if len(m.Files) == 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n")
		return b.String(), id
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"part-boundary\"\r\n\r\n")
	b.WriteString("--part-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n")
	for _, f := range m.Files {
		b.WriteString("--part-boundary\r\n")
		b.WriteString("Content-Type: " + mime.FormatMediaType("text/csv", map[string]string{"name": f.Name}) + "\r\n")
		b.WriteString("Content-Disposition: " + mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}) + "\r\n")
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString([]byte(f.Body))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--part-boundary--\r\n")
	return b.String(), id
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var idSeq atomic.Int64

func uniqueID() string {
	return fmt.Sprintf("%d.%d.%d", time.Now().UnixNano(), os.Getpid(), idSeq.Add(1))
}

// crlf writes a hand-written message with CRLF line ends, as mail has.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// WantMailbox fails the test unless mailbox holds n messages, and returns them.
func (h *MailHarness) WantMailbox(mailbox string, n int) []StoredMessage {
	h.t.Helper()
	msgs, err := h.Server.Messages(mailbox)
	if err != nil {
		h.t.Fatalf("%s: %v", mailbox, err)
	}
	if len(msgs) != n {
		h.t.Fatalf("%s holds %d messages; want %d", mailbox, len(msgs), n)
	}
	return msgs
}

// WantRefused fails the test unless the report holds exactly one refused
// message (message-<uid>.eml) and it was quarantined with code; it returns it.
func (h *MailHarness) WantRefused(rep poller.PollReport, code outcome.QuarantineCode) poller.FileReport {
	h.t.Helper()
	var found []poller.FileReport
	for _, f := range rep.Files {
		if strings.HasSuffix(f.Name, ".eml") {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		h.t.Fatalf("report %+v; want one refused message", rep.Files)
	}
	f := found[0]
	if f.Status != string(outcome.Quarantined) || f.Result.Code != code || f.Err != nil {
		h.t.Fatalf("%s: %s %s (%s, err %v); want QUARANTINED %s", f.Name, f.Status, f.Result.Code, f.Result.Reason, f.Err, code)
	}
	return f
}

// WantReply fails the test unless a mail to to answering the message
// inReplyTo (a Message-ID) carries the attachment name, and returns the
// attachment's content.
func (h *MailHarness) WantReply(to, inReplyTo, name string) string {
	// name is a pattern: result files are named by the received file's id too.
	h.t.Helper()
	_, attachment := h.WantReplyText(to, inReplyTo, name)
	return attachment
}

// WantReplyText is WantReply, returning the reply's text as well.
func (h *MailHarness) WantReplyText(to, inReplyTo, name string) (text, attachment string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var seen []string
	for {
		seen = seen[:0]
		for _, m := range h.SMTP.Mail() {
			r, err := mail.CreateReader(bytes.NewReader(m.Data))
			if err != nil {
				h.t.Fatalf("a sent mail does not parse: %v\n%s", err, m.Data)
			}
			ids, _ := r.Header.MsgIDList("In-Reply-To")
			rcpts, _ := r.Header.AddressList("To")
			text = ""
			for {
				p, err := r.NextPart()
				if err != nil {
					break
				}
				body, _ := io.ReadAll(p.Body)
				ah, ok := p.Header.(*mail.AttachmentHeader)
				if !ok {
					text += string(body)
					continue
				}
				fn, _ := ah.Filename()
				seen = append(seen, fmt.Sprintf("%s to %v in reply to %v", fn, m.To, ids))
				if matched, _ := path.Match(name, fn); matched && slices.Equal(m.To, []string{to}) && len(rcpts) == 1 && rcpts[0].Address == to &&
					(inReplyTo == "" || slices.Equal(ids, []string{inReplyTo})) {
					return text, string(body)
				}
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no mail to %s in reply to <%s> with %s; sent: %q", to, inReplyTo, name, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RepliesTo counts the mails sent in reply to the message inReplyTo.
func (h *MailHarness) RepliesTo(inReplyTo string) int {
	h.t.Helper()
	n := 0
	for _, m := range h.SMTP.Mail() {
		r, err := mail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			h.t.Fatalf("a sent mail does not parse: %v\n%s", err, m.Data)
		}
		if ids, _ := r.Header.MsgIDList("In-Reply-To"); slices.Equal(ids, []string{inReplyTo}) {
			n++
		}
	}
	return n
}

// NoMailSent fails the test if any mail was sent.
func (h *MailHarness) NoMailSent() {
	h.t.Helper()
	if m := h.SMTP.Mail(); len(m) != 0 {
		h.t.Fatalf("%d mails sent; want none: %s", len(m), m[0].Data)
	}
}

func statusOf(rep poller.PollReport, name string) string {
	for _, f := range rep.Files {
		if f.Name == name {
			return f.Status
		}
	}
	return ""
}

// closedAddress is a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
