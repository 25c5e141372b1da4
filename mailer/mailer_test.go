package mailer_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"go.uber.org/goleak"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/internal/tlstest"
	"github.com/returnsd/returnsd/mailer"
	"github.com/returnsd/returnsd/mailer/smtptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds each test's sends and waits: a hang fails the test
// with a message instead of stalling the run.
const testTimeout = 30 * time.Second

// testContext is the context of a test's sends: it ends with the test, or
// after testTimeout.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitWithin waits for wg, and fails the test if it takes longer than testTimeout.
func waitWithin(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Errorf("%s did not end within %s", what, testTimeout)
	}
}

func setup(t *testing.T) (*smtptest.Server, *config.SMTP) {
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
	return srv, &config.SMTP{Address: srv.Addr, TLS: config.TLSImplicit, CAFile: srv.CAFile,
		Username: srv.User, PasswordEnv: config.SecretFromEnv(srv.Password),
		From: "Returns <returns@platform.example>", Timeout: config.Duration{Time: 5 * time.Second}}
}

func reply(body string) mailer.Message {
	return mailer.Message{To: "ops@acme.example", Subject: "Result of résumé.csv", InReplyTo: "orig-1@acme.example",
		Text:        "See the attached result.",
		Attachments: []mailer.Attachment{{Name: "result_résumé.csv", ContentType: "text/csv; charset=utf-8", Body: strings.NewReader(body)}}}
}

func TestSendDeliversAThreadedReplyWithItsAttachment(t *testing.T) {
	t.Parallel()
	srv, cfg := setup(t)
	body := strings.Repeat("ActionId,Outcome\r\n5001,APPLIED\r\n", 5000)
	if err := mailer.New(cfg).Send(testContext(t), reply(body)); err != nil {
		t.Fatal(err)
	}
	sent := srv.Mail()
	if len(sent) != 1 || sent[0].From != "returns@platform.example" || len(sent[0].To) != 1 || sent[0].To[0] != "ops@acme.example" {
		t.Fatalf("envelope %+v", sent)
	}
	r, err := mail.CreateReader(strings.NewReader(string(sent[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := r.Header.MsgIDList("In-Reply-To"); len(ids) != 1 || ids[0] != "orig-1@acme.example" {
		t.Errorf("In-Reply-To %v", ids)
	}
	if ids, _ := r.Header.MsgIDList("References"); len(ids) != 1 || ids[0] != "orig-1@acme.example" {
		t.Errorf("References %v", ids)
	}
	if s, _ := r.Header.Subject(); s != "Result of résumé.csv" {
		t.Errorf("subject %q", s)
	}
	if id, _ := r.Header.MessageID(); !strings.HasSuffix(id, "@platform.example") {
		t.Errorf("Message-ID %q", id)
	}
	if r.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("Auto-Submitted %q", r.Header.Get("Auto-Submitted"))
	}
	var got []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			got = append(got, "text:"+string(b))
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			got = append(got, "file:"+name)
			if string(b) != body {
				t.Errorf("attachment of %d bytes; want %d", len(b), len(body))
			}
		}
	}
	if strings.Join(got, "|") != "text:See the attached result.|file:result_résumé.csv" {
		t.Errorf("parts %q", got)
	}
}

func TestSTARTTLSSends(t *testing.T) {
	t.Parallel()
	srv, cfg := setup(t)
	cfg.Address, cfg.TLS = srv.StartTLSAddr, config.TLSStartTLS
	if err := mailer.New(cfg).Send(testContext(t), reply("x")); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Mail()); n != 1 {
		t.Errorf("%d mails", n)
	}
}

func TestAServerWithoutSTARTTLSIsRefusedBeforeAnythingIsSent(t *testing.T) {
	t.Parallel()
	fake := startPlainSMTP(t)
	_, cfg := setup(t)
	cfg.Address, cfg.TLS = fake.addr, config.TLSStartTLS
	err := mailer.New(cfg).Send(testContext(t), reply("secret rows"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || !strings.HasPrefix(err.Error(), "smtp: ") {
		t.Fatalf("err %v; want STARTTLS refused", err)
	}
	for _, l := range fake.lines() {
		if !strings.HasPrefix(l, "EHLO") && !strings.HasPrefix(l, "QUIT") {
			t.Errorf("the client said %q in clear", l)
		}
	}
}

func TestAnUntrustedCertificateIsRefused(t *testing.T) {
	t.Parallel()
	srv, cfg := setup(t)
	other, err := tlstest.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CAFile, err = other.WriteCA(t.TempDir(), "ca.pem"); err != nil {
		t.Fatal(err)
	}
	if err := mailer.New(cfg).Send(testContext(t), reply("x")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err %v; want the certificate refused", err)
	}
	if n := len(srv.Mail()); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

func TestAWrongPasswordIsAnError(t *testing.T) {
	t.Parallel()
	srv, cfg := setup(t)
	cfg.PasswordEnv = config.SecretFromEnv("wrong")
	if err := mailer.New(cfg).Send(testContext(t), reply("x")); err == nil || !strings.Contains(err.Error(), "login") {
		t.Fatalf("err %v", err)
	}
	if n := len(srv.Mail()); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

func TestASilentServerFailsWithinTheTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var held []net.Conn
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		waitWithin(t, &wg, "the silent server's accept loop")
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	_, cfg := setup(t)
	cfg.Address, cfg.Timeout = ln.Addr().String(), config.Duration{Time: 500 * time.Millisecond}
	start := time.Now()
	if err := mailer.New(cfg).Send(testContext(t), reply("x")); err == nil {
		t.Fatal("a silent server took the mail")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s; the timeout is 500ms", d)
	}
}

// plainSMTP greets and answers EHLO without offering STARTTLS, and records
// what the client says.
type plainSMTP struct {
	addr string
	mu   sync.Mutex
	said []string
}

func (p *plainSMTP) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.said...)
}

func startPlainSMTP(t *testing.T) *plainSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &plainSMTP{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "220 plain.example ESMTP\r\n")
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					l := sc.Text()
					p.mu.Lock()
					p.said = append(p.said, l)
					p.mu.Unlock()
					switch {
					case strings.HasPrefix(l, "EHLO"):
						io.WriteString(c, "250-plain.example\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
					case strings.HasPrefix(l, "QUIT"):
						io.WriteString(c, "221 bye\r\n")
						return
					default:
						io.WriteString(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); waitWithin(t, &wg, "the plain SMTP server") })
	return p
}

// TestANameThatIsNotUTF8IsSentAsValidUTF8: a file name kept as an old
// mailer's raw Latin-1 bytes must not be declared UTF-8 in the reply.
func TestANameThatIsNotUTF8IsSentAsValidUTF8(t *testing.T) {
	t.Parallel()
	srv, cfg := setup(t)
	msg := reply("x")
	msg.Subject = "Result of Retouren M\xe4rz.csv"
	msg.Attachments[0].Name = "result_Retouren M\xe4rz.csv"
	if err := mailer.New(cfg).Send(testContext(t), msg); err != nil {
		t.Fatal(err)
	}
	sent := srv.Mail()
	if len(sent) != 1 {
		t.Fatalf("%d mails", len(sent))
	}
	r, err := mail.CreateReader(strings.NewReader(string(sent[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.Header.Subject(); err != nil || s != "Result of Retouren M\uFFFDrz.csv" {
		t.Errorf("subject %q (%v)", s, err)
	}
	var names []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, err := h.Filename()
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
	}
	if len(names) != 1 || names[0] != "result_Retouren M_rz.csv" {
		t.Errorf("attachments %q", names)
	}
}

// TestAMessageToSeveralWithHTMLIsOneMailOfAlternatives: the daily report goes
// to every recipient in one message, HTML with a text alternative, under the
// Message-ID it is given, marked as generated by a program.
func TestAMessageToSeveralWithHTMLIsOneMailOfAlternatives(t *testing.T) {
	t.Parallel()
	srv, cfg := setup(t)
	html := "<!DOCTYPE html><p>" + strings.Repeat("<b>ünïcode</b> ", 400) + "</p>" // one long line
	msg := mailer.Message{To: "ops@platform.example", AlsoTo: []string{"Finance <finance@platform.example>"},
		Subject: "Daily report 2026-11-23", MessageID: "report-2026-11-23.utc@platform.example",
		Text: "Files received: 5", HTML: html,
		Attachments: []mailer.Attachment{{Name: "report-2026-11-23.csv", ContentType: "text/csv; charset=utf-8", Body: strings.NewReader("Day\n")}}}
	if err := mailer.New(cfg).Send(testContext(t), msg); err != nil {
		t.Fatal(err)
	}
	sent := srv.Mail()
	if len(sent) != 1 || strings.Join(sent[0].To, " ") != "ops@platform.example finance@platform.example" {
		t.Fatalf("envelope %+v", sent)
	}
	for _, l := range strings.Split(string(sent[0].Data), "\r\n") {
		if len(l) > 998 {
			t.Fatalf("a line of %d bytes: SMTP allows 998", len(l))
		}
	}
	r, err := mail.CreateReader(strings.NewReader(string(sent[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	if to, _ := r.Header.AddressList("To"); len(to) != 2 || to[1].Name != "Finance" {
		t.Errorf("To %v", to)
	}
	if id, _ := r.Header.MessageID(); id != "report-2026-11-23.utc@platform.example" {
		t.Errorf("Message-ID %q", id)
	}
	if r.Header.Get("Auto-Submitted") != "auto-generated" || r.Header.Get("In-Reply-To") != "" {
		t.Errorf("Auto-Submitted %q, In-Reply-To %q", r.Header.Get("Auto-Submitted"), r.Header.Get("In-Reply-To"))
	}
	var got []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			got = append(got, ct)
			if ct == "text/html" && string(b) != html {
				t.Errorf("the HTML part differs: %d bytes, want %d", len(b), len(html))
			}
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			got = append(got, "file:"+name)
		}
	}
	if strings.Join(got, "|") != "text/plain|text/html|file:report-2026-11-23.csv" {
		t.Errorf("parts %q", got)
	}
}
