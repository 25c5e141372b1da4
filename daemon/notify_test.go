package daemon_test

import (
	"context"
	"errors"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/daemon"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/mailer/smtptest"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// setupPartnerMail is setup with partner 301 of acme mailed at
// claims@partner301.example through an in-process SMTP server, the partners'
// mail sent every second, and acme's fixture inquiries imported (of partner
// 301's, INQ-9001 is accepted).
func setupPartnerMail(t *testing.T) (*testBundle, *smtptest.Server) {
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
	secret := filepath.Join(t.TempDir(), "smtp")
	if err := os.WriteFile(secret, []byte(srv.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	b := setupEdited(t, []string{"        resolution_deadline: 12w", "        resolution_deadline: 12w\n" +
		"      partners:\n        - {partner: 301, contact: claims@partner301.example}",
		`  notify: "* * * * *"`, `  notify: "@every 1s"`}, `
smtp:
  address: `+srv.Addr+`
  tls: implicit
  ca_file: `+srv.CAFile+`
  username: `+srv.User+`
  password_file: `+secret+`
  from: returns@platform.example
  timeout: 5s
`)
	data, _ := returnsd.Fixtures.ReadFile("fixtures/acme_inquiries.csv")
	path := filepath.Join(b.dir, "acme_inquiries.csv")
	os.WriteFile(path, data, 0o644)
	acme, _ := b.cfg.Brand("acme")
	p := &pipeline.Pipeline{Ledger: b.open(t)}
	if _, err := p.Process(context.Background(), pipeline.Params{Brand: "acme", Format: pipeline.Format(acme), Source: "cli",
		Actor: "cli:test", Path: path, Kind: processors.Inquiries}); err != nil {
		t.Fatal(err)
	}
	return b, srv
}

func messageID(t *testing.T, m smtptest.Mail) (id, subject string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Header.Get("Message-Id"), msg.Header.Get("Subject")
}

func TestPartnersAreToldAboutTheirInquiries(t *testing.T) {
	t.Parallel()

	t.Run("TheDaemonMailsEachChangeToThePartnersContact", func(t *testing.T) {
		t.Parallel()
		b, srv := setupPartnerMail(t)
		b.start(t)
		got := srv.WaitMail(1, 60*time.Second)
		if len(got) != 1 {
			t.Fatalf("%d mails within 60 s, want INQ-9001's", len(got))
		}
		id, subject := messageID(t, got[0])
		if got[0].To[0] != "claims@partner301.example" || subject != "Inquiry INQ-9001 (ACME Outdoor, order ORD-2001): received" ||
			!strings.HasPrefix(id, "<returnsd.inquiry.") || !strings.HasSuffix(id, ".acme@platform.example>") {
			t.Errorf("to %v, subject %q, Message-ID %s", got[0].To, subject, id)
		}
		eventually(t, 30*time.Second, "the notice is marked sent", func() bool {
			return b.queryInt(t, "SELECT count(*) FROM inquiry_notices WHERE state = 'SENT'") == 1
		})
		time.Sleep(2 * time.Second)
		if n := len(srv.Mail()); n != 1 {
			t.Errorf("%d mails, want the one notice once", n)
		}
	})

	t.Run("ANoticeSentButNotRecordedGoesAgainAsTheSameMessage", func(t *testing.T) {
		t.Parallel()
		b, srv := setupPartnerMail(t)
		l := b.open(t)
		partners := daemon.NewPartnerMailer(&b.cfg.SMTP)
		crash := errors.New("killed after the server took the mail, before it was recorded")
		crashing := func(ctx context.Context, n ledger.InquiryNotice) error {
			if err := partners.Send(ctx, n); err != nil {
				return err
			}
			return crash
		}
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		if sum, err := l.DeliverInquiryNotices(ctx, ledger.DeliverParams{At: at, Send: crashing}); err != nil || sum.Sent != 0 || sum.Pending != 1 {
			t.Fatalf("the crashed run: %+v, %v", sum, err)
		}
		if sum, err := l.DeliverInquiryNotices(ctx, ledger.DeliverParams{At: at.Add(time.Minute), Send: partners.Send}); err != nil || sum.Sent != 1 {
			t.Fatalf("the run after: %+v, %v", sum, err)
		}
		got := srv.Mail()
		if len(got) != 2 {
			t.Fatalf("%d mails, want the notice twice", len(got))
		}
		first, _ := messageID(t, got[0])
		second, _ := messageID(t, got[1])
		if first != second {
			t.Errorf("Message-IDs %s and %s: a mail store cannot tell the copy", first, second)
		}
	})
}
