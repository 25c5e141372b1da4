package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/ingest/imap/imaptest"
	"github.com/returnsd/returnsd/mailer/smtptest"
)

func TestPollIMAP(t *testing.T) {
	t.Parallel()
	c, b := setupLoaded(t)
	imapSrv, err := imaptest.StartInProcess(imaptest.InProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imapSrv.Stop() })
	smtpSrv, err := smtptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpSrv.Stop() })
	c.env["SMTP_PASSWORD"] = smtpSrv.Password
	cfg := writeConfig(t, b.dir, "log:\n", fmt.Sprintf(`smtp:
  address: %s
  ca_file: %s
  username: %s
  password: ${SMTP_PASSWORD}
  from: returnsd <returns@platform.example>
sources:
  - name: returns-inbox
    type: imap
    address: %s
    ca_file: %s
    username: %s
    password_file: %s
    routes:
      - {recipient: returns+acme@platform.example, brand: acme, senders: ["*@acme.example"]}
spool_dir: %s
log:
`, smtpSrv.Addr, smtpSrv.CAFile, smtpSrv.User, imapSrv.Addr, imapSrv.CAFile, imapSrv.User, imapSrv.PasswordFile,
		filepath.Join(b.dir, "spool")))
	data, err := os.ReadFile(b.path("acme_returns.csv"))
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: returns@acme.example\r\nTo: returns+acme@platform.example\r\nMessage-ID: <cli@acme.example>\r\n" +
		"Subject: returns\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=acme_returns.csv\r\n\r\n" +
		strings.ReplaceAll(string(data), "\n", "\r\n")
	lost := "From: returns@acme.example\r\nTo: nobody@platform.example\r\nMessage-ID: <lost@acme.example>\r\n" +
		"Subject: lost\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	for _, m := range []string{msg, lost} {
		if err := imapSrv.Append("INBOX", []byte(m), time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	if out := c.mustRun("poll", "--config", cfg, "returns-inbox"); !strings.Contains(out, "acme_returns.csv\tWAITING") {
		t.Fatalf("first poll:\n%s", out)
	}
	out := c.mustRun("poll", "--config", cfg, "returns-inbox")
	if !strings.Contains(out, "acme_returns.csv\tCOMPLETED\tfile ") || !strings.Contains(out, "rows 12: applied") {
		t.Errorf("second poll:\n%s", out)
	}
	if !strings.Contains(out, "QUARANTINED\tNO_ROUTE: no route for its recipients (nobody@platform.example)") {
		t.Errorf("the message without a route is not reported with its reason:\n%s", out)
	}
	mail := smtpSrv.WaitMail(1, 10*time.Second)
	if len(mail) != 1 || mail[0].To[0] != "returns@acme.example" || !strings.Contains(string(mail[0].Data), "result_acme_returns_") {
		t.Errorf("mailed %+v", mail)
	}
	for mailbox, n := range map[string]int{"INBOX": 0, "Processed": 1, "Quarantine": 1} {
		if msgs, err := imapSrv.Messages(mailbox); err != nil || len(msgs) != n {
			t.Errorf("%s holds %d messages (%v); want %d", mailbox, len(msgs), err, n)
		}
	}
}
