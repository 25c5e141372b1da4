package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/mailer/smtptest"
)

// withMail gives a test an SMTP server, and the config of the daemon the
// report's recipients and a report schedule of every second.
func withMail(t *testing.T) (*testBundle, *smtptest.Server) {
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
	dir := t.TempDir()
	password := filepath.Join(dir, "smtp_password")
	if err := os.WriteFile(password, []byte(srv.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := setup(t, `
smtp:
  address: `+srv.Addr+`
  tls: implicit
  ca_file: `+srv.CAFile+`
  username: `+srv.User+`
  password_file: `+password+`
  from: returnsd <returns@platform.example>
  timeout: 10s
report:
  recipients: [ops@platform.example, finance@platform.example]
`)
	// Every second: each run is for the same day, yesterday by the daemon's clock.
	b.cfg.Schedules.Report = "@every 1s"
	if err := b.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return b, srv
}

func TestTheDailyReport(t *testing.T) {
	t.Parallel()

	t.Run("IsMailedOnceForTheDayHoweverOftenItsScheduleRuns", func(t *testing.T) {
		t.Parallel()
		b, srv := withMail(t)
		b.start(t)

		mails := srv.WaitMail(1, 60*time.Second)
		if len(mails) != 1 {
			t.Fatalf("%d mails within 60 s", len(mails))
		}
		// Several more runs of the schedule find the day mailed.
		eventually(t, 30*time.Second, "three runs find the report mailed", func() bool {
			return strings.Count(b.log.String(), "daily report was mailed before") >= 3
		})
		if n := len(srv.Mail()); n != 1 {
			t.Errorf("%d mails, want 1", n)
		}
		m := mails[0]
		// The daemon's clock is Nov 24, 12:00 UTC: the report is of Nov 23 in UTC.
		if strings.Join(m.To, " ") != "ops@platform.example finance@platform.example" ||
			!strings.Contains(string(m.Data), "Subject: returnsd daily report 2026-11-23 (UTC)") {
			t.Errorf("mail to %q:\n%.800s", m.To, m.Data)
		}
		if n := b.queryInt(t, `SELECT count(*) FROM report_deliveries
			WHERE day = '2026-11-23' AND timezone = 'UTC' AND state = 'SENT' AND attempts = 1`); n != 1 {
			t.Errorf("%d SENT deliveries of Nov 23 recorded", n)
		}
		if !strings.Contains(b.log.String(), "daily report mailed") || !strings.Contains(b.log.String(), "job=daily_report") {
			t.Errorf("the log does not say it mailed the report:\n%.3000s", b.log.String())
		}
	})

	t.Run("TwoReplicasMailItOnce", func(t *testing.T) {
		t.Parallel()
		b, srv := withMail(t)
		b.start(t)
		b.start(t)

		if mails := srv.WaitMail(1, 60*time.Second); len(mails) != 1 {
			t.Fatalf("%d mails within 60 s", len(mails))
		}
		eventually(t, 30*time.Second, "three runs find the report mailed", func() bool {
			return strings.Count(b.log.String(), "daily report was mailed before") >= 3
		})
		if n := len(srv.Mail()); n != 1 {
			t.Errorf("%d mails, want 1", n)
		}
	})

	t.Run("IsNotScheduledWithoutRecipients", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		b.start(t)
		eventually(t, 30*time.Second, "the log says why", func() bool {
			return strings.Contains(b.log.String(), "the daily report is not mailed: report.recipients is empty")
		})
		if n := b.queryInt(t, "SELECT count(*) FROM river_job WHERE kind = 'daily_report'"); n != 0 {
			t.Errorf("%d report jobs", n)
		}
		var exists bool
		b.db.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM report_deliveries)").Scan(&exists)
		if exists {
			t.Error("a report delivery was recorded")
		}
	})
}
