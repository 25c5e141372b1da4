package report

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/mailer"
	"github.com/returnsd/returnsd/mailer/smtptest"
)

// smtpServer starts the in-process SMTP server for a test and returns it with
// a mailer that sends through it.
func smtpServer(t *testing.T) (*smtptest.Server, *mailer.Mailer) {
	t.Helper()
	srv, err := smtptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv, mailer.New(&config.SMTP{Address: srv.Addr, TLS: config.TLSImplicit, CAFile: srv.CAFile,
		Username: srv.User, PasswordEnv: config.SecretFromEnv(srv.Password),
		From: "returnsd <returns@platform.example>", Timeout: config.Duration{Time: 10 * time.Second}})
}

// slowSender holds every send back a while, so that racing deliveries overlap.
type slowSender struct {
	Sender
	wait time.Duration
}

func (s slowSender) Send(ctx context.Context, msg mailer.Message) error {
	time.Sleep(s.wait)
	return s.Sender.Send(ctx, msg)
}

type failingSender struct{}

func (failingSender) Send(context.Context, mailer.Message) error {
	return errors.New("smtp: connect smtp.platform.example:465: connection refused")
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	day := Date{2026, 11, 23}
	berlin := mustZone("Europe/Berlin")
	params := DeliverParams{Day: day, Location: berlin, Recipients: []string{"ops@platform.example", "finance@platform.example"},
		From: "returnsd <returns@platform.example>", Now: time.Date(2026, 11, 24, 7, 0, 0, 0, berlin), By: "test"}

	t.Run("MailsTheDaysReportAsHTMLWithTheCSVAttachedOnce", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		file := b.load("acme", sale(5001, "100.00"))
		b.moveFile(file, time.Date(2026, 11, 23, 9, 0, 0, 0, berlin))
		srv, m := smtpServer(t)

		first, err := Deliver(b.ctx, l, m, params)
		if err != nil {
			t.Fatal(err)
		}
		second, err := Deliver(b.ctx, l, m, params)
		if err != nil {
			t.Fatal(err)
		}

		sent := srv.WaitMail(2, 500*time.Millisecond)
		if len(sent) != 1 || strings.Join(sent[0].To, " ") != "ops@platform.example finance@platform.example" {
			t.Fatalf("%d mails: %+v", len(sent), sent)
		}
		if !first.Sent || second.Sent || second.MessageID != "returnsd-report-2026-11-23.europe-berlin@platform.example" {
			t.Errorf("first %+v, second %+v", first, second)
		}
		r, err := mail.CreateReader(strings.NewReader(string(sent[0].Data)))
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := r.Header.Subject(); s != "returnsd daily report 2026-11-23 (Europe/Berlin): 1 files, 1 rows" {
			t.Errorf("subject %q", s)
		}
		var parts []string
		for {
			p, err := r.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(p.Body)
			switch h := p.Header.(type) {
			case *mail.InlineHeader:
				ct, _, _ := h.ContentType()
				parts = append(parts, ct)
				if ct == "text/html" && !strings.Contains(string(body), "Daily report 2026-11-23") {
					t.Errorf("the HTML part:\n%.300s", body)
				}
				if ct == "text/plain" && !strings.Contains(string(body), "Files received: 1 (1 completed") {
					t.Errorf("the text part:\n%s", body)
				}
			case *mail.AttachmentHeader:
				name, _ := h.Filename()
				parts = append(parts, name)
				if !strings.HasPrefix(string(body), strings.Join(CSVColumns, ",")+"\n2026-11-23,Europe/Berlin,") {
					t.Errorf("the CSV:\n%.300s", body)
				}
			}
		}
		if strings.Join(parts, "|") != "text/plain|text/html|returnsd-report-2026-11-23.csv" {
			t.Errorf("parts %q", parts)
		}
	})

	t.Run("TwoReplicasRacingForTheDaySendOneMail", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		srv, m := smtpServer(t)
		slow := slowSender{Sender: m, wait: 300 * time.Millisecond}
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]ledger.ReportDelivery, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p := params
				p.By = []string{"replica-a", "replica-b"}[i]
				results[i], errs[i] = Deliver(b.ctx, l, slow, p)
			}()
		}
		close(start)
		wg.Wait()

		sent, busy, already := 0, 0, 0
		for i := range 2 {
			switch {
			case errors.Is(errs[i], ledger.ErrDeliveryBusy):
				busy++
				// The job that was told so retries later, and finds the day sent.
				again, err := Deliver(b.ctx, l, slow, params)
				if err != nil || again.Sent {
					t.Errorf("the retry of the busy replica: %+v, %v", again, err)
				}
			case errs[i] != nil:
				t.Errorf("replica %d: %v", i, errs[i])
			case results[i].Sent:
				sent++
			default:
				already++
			}
		}
		if sent != 1 || busy+already != 1 {
			t.Errorf("%d sent, %d busy, %d found it sent; want 1 sent", sent, busy, already)
		}
		if mails := srv.WaitMail(2, time.Second); len(mails) != 1 {
			t.Errorf("%d mails, want 1", len(mails))
		}
	})

	t.Run("AFailedSendIsRecordedAndTheRetrySendsIt", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		srv, m := smtpServer(t)

		_, err := Deliver(b.ctx, l, failingSender{}, params)
		failed, _ := l.ReportDeliveryOf(b.ctx, ledger.ReportDay{Day: "2026-11-23", Timezone: "Europe/Berlin"})
		retry, retryErr := Deliver(b.ctx, l, m, params)

		if err == nil || failed.State != "FAILED" || !strings.Contains(failed.LastError, "connection refused") {
			t.Errorf("failed send: %v, recorded %+v", err, failed)
		}
		if retryErr != nil || !retry.Sent || retry.Attempts != 2 || len(srv.WaitMail(1, 5*time.Second)) != 1 {
			t.Errorf("retry: %+v, %v", retry, retryErr)
		}
	})

	t.Run("TheSameDayInAnotherZoneIsAnotherReport", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		srv, m := smtpServer(t)
		utc := params
		utc.Location = time.UTC
		for _, p := range []DeliverParams{params, utc} {
			if _, err := Deliver(b.ctx, l, m, p); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(srv.WaitMail(2, 5*time.Second)); n != 2 {
			t.Errorf("%d mails", n)
		}
		if MessageID(day, time.UTC, params.From) == MessageID(day, berlin, params.From) {
			t.Error("the two reports share a Message-ID")
		}
	})

	t.Run("NoRecipientsIsAMistake", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		p := params
		p.Recipients = nil
		if _, err := Deliver(b.ctx, l, failingSender{}, p); err == nil {
			t.Error("delivered to nobody")
		}
	})
}

func TestSubjectNamesWhatNeedsLooking(t *testing.T) {
	got := Subject(sampleReport())
	want := "returnsd daily report 2026-11-23 (Europe/Berlin): 5 files, 1,260 rows; 1 quarantined, 45 rows rejected, 1 sources failing"
	if got != want {
		t.Errorf("subject %q\nwant    %q", got, want)
	}
}
