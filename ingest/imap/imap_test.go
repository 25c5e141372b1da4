package imap_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/imap"
	"github.com/returnsd/returnsd/ingest/imap/imaptest"
	"github.com/returnsd/returnsd/ingest/sourcetest"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/outcome"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// mailServer adapts an imaptest.Server to the conformance suite.
type mailServer struct {
	*imaptest.Server
	starttls bool
}

func (m mailServer) Configure(cfg *config.Source) {
	cfg.Type, cfg.Address, cfg.TLS = config.IMAP, m.Addr, config.TLSImplicit
	if m.starttls {
		cfg.Address, cfg.TLS = m.StartTLSAddr, config.TLSStartTLS
	}
	cfg.CAFile, cfg.Username, cfg.PasswordFile = m.CAFile, m.User, m.PasswordFile
}

func (m mailServer) NewSource(t *testing.T, cfg *config.Source, smtp *config.SMTP) ingest.Source {
	s := imap.New(cfg, smtp)
	t.Cleanup(func() { s.Close() })
	return s
}

func (m mailServer) Messages(mailbox string) ([]sourcetest.StoredMessage, error) {
	msgs, err := m.Server.Messages(mailbox)
	out := make([]sourcetest.StoredMessage, len(msgs))
	for i, msg := range msgs {
		out[i] = sourcetest.StoredMessage{Seen: msg.Seen(), Date: msg.Date, Body: msg.Body}
	}
	return out, err
}

// testTimeout bounds each test's calls and waits: a hang fails the test with
// a message instead of stalling the run.
const testTimeout = time.Minute

// testContext is the context of a test's calls to the source: it ends with
// the test, or after testTimeout.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func startInProcess(t *testing.T, opts imaptest.InProcessOptions) *imaptest.Server {
	t.Helper()
	srv, err := imaptest.StartInProcess(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// startDovecot starts Debian's Dovecot. A missing Dovecot fails the test, never
// skips it: scripts/test installs dovecot-imapd.
func startDovecot(t *testing.T) *imaptest.Server {
	t.Helper()
	srv, err := imaptest.StartDovecot()
	if err != nil {
		t.Fatalf("Dovecot: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

func TestConformanceInProcess(t *testing.T) {
	sourcetest.RunMail(t, mailServer{Server: startInProcess(t, imaptest.InProcessOptions{})})
}

func TestConformanceDovecot(t *testing.T) {
	sourcetest.RunMail(t, mailServer{Server: startDovecot(t)})
}

// TestDovecotOverSTARTTLS takes a message over Dovecot's STARTTLS port (where
// Dovecot refuses a login before STARTTLS: ssl = required).
func TestDovecotOverSTARTTLS(t *testing.T) {
	t.Parallel()
	srv := mailServer{Server: startDovecot(t), starttls: true}
	h := sourcetest.SetupMail(t, srv)
	if h.Cfg.TLS != config.TLSStartTLS || h.Cfg.Address != srv.StartTLSAddr {
		t.Fatalf("configured %s at %s", h.Cfg.TLS, h.Cfg.Address)
	}
	id := h.Deliver(sourcetest.Mail{Files: []sourcetest.MailFile{{Name: "starttls.csv", Body: sourcetest.ReturnsFile(5001, "s")}}}, time.Hour)
	h.Poll()
	h.WantStatus(h.Poll(), "starttls.csv", outcome.Completed)
	h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
	h.WantReply("returns@acme.example", id, "result_starttls_*.csv")
}

// TestWithoutMOVEMessagesAreCopiedAndExpunged runs the suite against a server
// with neither MOVE nor UIDPLUS: messages are moved by COPY, \Deleted and EXPUNGE.
func TestWithoutMOVEMessagesAreCopiedAndExpunged(t *testing.T) {
	srv := mailServer{Server: startInProcess(t, imaptest.InProcessOptions{NoMove: true})}
	h := sourcetest.SetupMail(t, srv)
	h.Deliver(sourcetest.Mail{Files: []sourcetest.MailFile{{Name: "moved.csv", Body: sourcetest.ReturnsFile(5001, "m")}}}, time.Hour)
	h.Poll()
	h.WantStatus(h.Poll(), "moved.csv", outcome.Completed)
	h.WantMailbox(h.Cfg.Mailbox, 0)
	h.WantMailbox(h.Cfg.ProcessedMailbox, 1)
}

// baseConfig is a source config for direct calls (no poller).
func baseConfig(srv *imaptest.Server) *config.Source {
	return &config.Source{Name: "s", Type: config.IMAP, Address: srv.Addr, TLS: config.TLSImplicit,
		CAFile: srv.CAFile, Username: srv.User, PasswordFile: srv.PasswordFile, Mailbox: "INBOX",
		ProcessedMailbox: "Processed", QuarantineMailbox: "Quarantine", After: config.AfterMove,
		Routes:  []config.Route{{Recipient: sourcetest.AcmeAddress, Brand: "acme", Senders: []string{"*"}}},
		Timeout: config.Duration{Time: 2 * time.Second}}
}

func TestSTARTTLSIsRequired(t *testing.T) {
	t.Parallel()

	t.Run("AServerWithoutSTARTTLSIsRefusedBeforeThePasswordIsSent", func(t *testing.T) {
		srv := startInProcess(t, imaptest.InProcessOptions{NoTLS: true})
		cfg := baseConfig(srv)
		cfg.Address, cfg.TLS = srv.StartTLSAddr, config.TLSStartTLS
		s := imap.New(cfg, nil)
		defer s.Close()
		_, err := s.List(testContext(t))
		if err == nil || !strings.HasPrefix(err.Error(), "imap: STARTTLS") {
			t.Fatalf("err %v; want STARTTLS refused", err)
		}
		traffic := srv.Traffic()
		if !strings.Contains(traffic, "STARTTLS") {
			t.Fatalf("the server saw no STARTTLS:\n%s", traffic)
		}
		if strings.Contains(traffic, srv.Password) || strings.Contains(strings.ToUpper(traffic), "LOGIN") {
			t.Errorf("the password or a LOGIN went out in clear:\n%s", traffic)
		}
	})

	t.Run("STARTTLSWithATrustedCertificateLogsIn", func(t *testing.T) {
		srv := startInProcess(t, imaptest.InProcessOptions{})
		cfg := baseConfig(srv)
		cfg.Address, cfg.TLS = srv.StartTLSAddr, config.TLSStartTLS
		s := imap.New(cfg, nil)
		defer s.Close()
		if _, err := s.List(testContext(t)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ImplicitTLSAgainstAPlainPortFails", func(t *testing.T) {
		srv := startInProcess(t, imaptest.InProcessOptions{NoTLS: true})
		cfg := baseConfig(srv)
		cfg.Address = srv.StartTLSAddr
		s := imap.New(cfg, nil)
		defer s.Close()
		if _, err := s.List(testContext(t)); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
			t.Fatalf("err %v; want a failed handshake", err)
		}
		if strings.Contains(srv.Traffic(), srv.Password) {
			t.Error("the password went out in clear")
		}
	})
}

func TestWithoutCAFileTheSystemRootsDoNotTrustAPrivateCertificate(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	cfg := baseConfig(srv)
	cfg.CAFile = ""
	s := imap.New(cfg, nil)
	defer s.Close()
	if _, err := s.List(testContext(t)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err %v; want the certificate refused", err)
	}
}

func TestAWrongPasswordIsAnError(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	cfg := baseConfig(srv)
	cfg.PasswordFile, cfg.PasswordEnv = "", config.SecretFromEnv("wrong")
	s := imap.New(cfg, nil)
	defer s.Close()
	if _, err := s.List(testContext(t)); err == nil || !strings.Contains(err.Error(), "login as "+srv.User) {
		t.Fatalf("err %v; want a refused login", err)
	}
}

func TestAServerThatHangsFailsWithinTheTimeoutAndIsReconnected(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	p := startProxy(t, srv.Addr)
	cfg := baseConfig(srv)
	cfg.Address = p.addr
	body := strings.Repeat(sourcetest.ReturnsFile(5001, "big"), 40000) // ~1 MB
	msg := "From: a@acme.example\r\nTo: " + sourcetest.AcmeAddress + "\r\nMessage-ID: <hang@acme.example>\r\n" +
		"Content-Type: text/csv\r\nContent-Disposition: attachment; filename=big.csv\r\n\r\n" + body
	if err := srv.Append("INBOX", []byte(msg), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s := imap.New(cfg, nil)
	defer s.Close()
	files, err := s.List(testContext(t))
	if err != nil || len(files) != 1 || files[0].Name != "big.csv" {
		t.Fatalf("list: %v %+v", err, files)
	}
	p.stallAfter(64 << 10)
	start := time.Now()
	err = s.Fetch(testContext(t), files[0], io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "imap: ") {
		t.Fatalf("a hung fetch: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hung fetch took %s; the timeout is 2s", d)
	}
	p.stallAfter(-1)
	var n countingWriter
	if err := s.Fetch(testContext(t), files[0], &n); err != nil {
		t.Fatalf("no reconnect after the hang: %v", err)
	}
	if int(n) != len(body) {
		t.Errorf("fetched %d bytes; want %d", n, len(body))
	}
	if p.accepted.Load() < 2 {
		t.Errorf("%d connections; want a new one after the hang", p.accepted.Load())
	}
}

func TestACancelledContextEndsTheCall(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	p := startProxy(t, srv.Addr)
	cfg := baseConfig(srv)
	cfg.Address, cfg.Timeout = p.addr, config.Duration{Time: time.Minute}
	s := imap.New(cfg, nil)
	defer s.Close()
	if _, err := s.List(testContext(t)); err != nil {
		t.Fatal(err)
	}
	p.stallAfter(0)
	ctx, cancel := context.WithTimeout(testContext(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.List(ctx); err == nil {
		t.Fatal("a stalled list succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the cancelled list took %s", d)
	}
}

func TestServerDownIsAnErrorAndOtherSourcesGoOn(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	up := imap.New(baseConfig(srv), nil)
	defer up.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := ln.Addr().String()
	ln.Close()
	cfg := baseConfig(srv)
	cfg.Address = deadAddr
	down := imap.New(cfg, nil)
	defer down.Close()
	if _, err := down.List(testContext(t)); err == nil || !strings.HasPrefix(err.Error(), "imap: connect") {
		t.Fatalf("down: %v", err)
	}
	if _, err := up.List(testContext(t)); err != nil {
		t.Fatalf("up: %v", err)
	}
}

func TestAMessageOverMaxMessageBytesIsRefusedUnread(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	msg := "From: ops@acme.example\r\nTo: " + sourcetest.AcmeAddress + "\r\nMessage-ID: <big@acme.example>\r\n" +
		"Content-Type: text/csv\r\nContent-Disposition: attachment; filename=big.csv\r\n\r\n" +
		strings.Repeat(sourcetest.ReturnsFile(5001, "big"), 100)
	if err := srv.Append("INBOX", []byte(msg), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s := imap.New(baseConfig(srv), nil)
	defer s.Close()
	s.MaxMessageBytes = 1000
	files, err := s.List(testContext(t))
	if err != nil || len(files) != 1 {
		t.Fatalf("list: %v %+v", err, files)
	}
	f := files[0]
	if f.Refusal == nil || f.Refusal.Code != outcome.FileTooLarge || f.Brand != "acme" || f.Size != int64(len(msg)) ||
		!strings.HasSuffix(f.Name, ".eml") {
		t.Fatalf("listed %+v (refusal %+v)", f, f.Refusal)
	}
	var n countingWriter
	if err := s.Fetch(testContext(t), f, &n); err != nil || int64(n) != f.Size {
		t.Errorf("fetched %d bytes (%v); want the whole message, %d", n, err, f.Size)
	}
}

func TestPutWithoutSMTPIsAnError(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	msg := "From: a@acme.example\r\nTo: " + sourcetest.AcmeAddress + "\r\nMessage-ID: <put@acme.example>\r\n" +
		"Content-Type: text/csv\r\nContent-Disposition: attachment; filename=x.csv\r\n\r\nActionId\r\n1\r\n"
	if err := srv.Append("INBOX", []byte(msg), time.Now()); err != nil {
		t.Fatal(err)
	}
	s := imap.New(baseConfig(srv), nil)
	defer s.Close()
	files, err := s.List(testContext(t))
	if err != nil || len(files) != 1 {
		t.Fatalf("list: %v %+v", err, files)
	}
	err = s.Put(testContext(t), files[0], "result_x.csv", strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "no smtp server") {
		t.Fatalf("err %v", err)
	}
	if err := s.Put(testContext(t), ingest.File{Name: "y.csv", Path: "nowhere"}, "result_y.csv", strings.NewReader("x")); err == nil {
		t.Error("a result for a file never listed was accepted")
	}
}

type countingWriter int64

func (c *countingWriter) Write(b []byte) (int, error) {
	*c += countingWriter(len(b))
	return len(b), nil
}

// proxy forwards TCP to a server and can stall the server's replies after a
// number of bytes, as a broken network would.
type proxy struct {
	addr     string
	limit    atomic.Int64 // -1: forward all; else bytes left before the stall
	accepted atomic.Int64
	mu       sync.Mutex
	closed   bool
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	p.limit.Store(-1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			s, err := net.DialTimeout("tcp", target, testTimeout)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				// Accepted as the test ended: Cleanup has closed the others.
				p.mu.Unlock()
				c.Close()
				s.Close()
				return
			}
			p.conns = append(p.conns, c, s)
			p.wg.Add(2)
			p.mu.Unlock()
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer p.wg.Done(); p.copyReplies(c, s); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		done := make(chan struct{})
		go func() { p.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Errorf("the proxy's connections did not end within %s", testTimeout)
		}
	})
	return p
}

func (p *proxy) stallAfter(n int64) { p.limit.Store(n) }

func (p *proxy) copyReplies(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if left := p.limit.Load(); left >= 0 {
				if int64(n) > left {
					// Hold the connection open and silent until it is closed.
					io.Copy(io.Discard, src)
					return
				}
				p.limit.Add(-int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestACopyArrivingAfterItsMessageWasDoneIsMarkedSeenWithIt: with after:
// leave the message stays listed, and its files are acknowledged again at
// each poll; a copy delivered later is not listed, and is marked \Seen then.
func TestACopyArrivingAfterItsMessageWasDoneIsMarkedSeenWithIt(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, imaptest.InProcessOptions{})
	cfg := baseConfig(srv)
	cfg.After = config.AfterLeave
	msg := "From: a@acme.example\r\nTo: " + sourcetest.AcmeAddress + "\r\nMessage-ID: <copy@acme.example>\r\n" +
		"Content-Type: text/csv\r\nContent-Disposition: attachment; filename=x.csv\r\n\r\nActionId\r\n1\r\n"
	if err := srv.Append("INBOX", []byte(msg), time.Now()); err != nil {
		t.Fatal(err)
	}
	s := imap.New(cfg, nil)
	defer s.Close()
	files, err := s.List(testContext(t))
	if err != nil || len(files) != 1 {
		t.Fatalf("list: %v %+v", err, files)
	}
	if err := s.Ack(testContext(t), files[0], ingest.Processed); err != nil {
		t.Fatal(err)
	}
	if err := srv.Append("INBOX", []byte("Delivered-To: "+sourcetest.AcmeAddress+"\r\n"+msg), time.Now()); err != nil {
		t.Fatal(err)
	}
	again, err := s.List(testContext(t))
	if err != nil || len(again) != 1 || again[0].Path != files[0].Path {
		t.Fatalf("list: %v %+v; want the first message's file only", err, again)
	}
	if err := s.Ack(testContext(t), again[0], ingest.Processed); err != nil {
		t.Fatal(err)
	}
	msgs, err := srv.Messages("INBOX")
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%v %d messages", err, len(msgs))
	}
	for _, m := range msgs {
		if !m.Seen() {
			t.Errorf("message UID %d is not \\Seen", m.UID)
		}
	}
}
