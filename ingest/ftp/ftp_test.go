package ftp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/ftp"
	"github.com/returnsd/returnsd/ingest/ftp/ftptest"
	"github.com/returnsd/returnsd/ingest/sourcetest"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// connectTo points cfg at srv: its address, login, TLS mode and CA.
func connectTo(cfg *config.Source, srv *ftptest.Server) {
	cfg.Type, cfg.Address, cfg.Username = config.FTP, srv.Addr, srv.User
	cfg.PasswordEnv = config.SecretFromEnv(srv.Password)
	cfg.TLS, cfg.CAFile = srv.Mode, srv.Certs.CAFile
	cfg.InsecurePlaintext = srv.Mode == config.TLSNone
}

// newSource returns a NewSource reaching srv, through p when given.
func newSource(srv *ftptest.Server, p *proxy) sourcetest.NewSource {
	return func(t *testing.T, cfg *config.Source) ingest.Source {
		connectTo(cfg, srv)
		s := ftp.New(cfg)
		if p != nil {
			ftp.SetDial(s, p.dial)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func startInProcess(t *testing.T, mode config.TLSMode) *ftptest.Server {
	t.Helper()
	srv, err := ftptest.StartInProcess(mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// startVsftpd starts Debian's vsftpd. A missing vsftpd fails the test, never
// skips it: scripts/test installs vsftpd. A failing test shows vsftpd's log.
func startVsftpd(t *testing.T, mode config.TLSMode) *ftptest.Server {
	t.Helper()
	srv, err := ftptest.StartVsftpd(mode)
	if err != nil {
		t.Fatalf("vsftpd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vsftpd log:\n%s", srv.Log())
		}
		srv.Stop()
	})
	return srv
}

func TestConformanceInProcess(t *testing.T) {
	sourcetest.Run(t, newSource(startInProcess(t, config.TLSExplicit), nil))
}

func TestConformanceVsftpdExplicitTLS(t *testing.T) {
	sourcetest.Run(t, newSource(startVsftpd(t, config.TLSExplicit), nil))
}

func TestConformanceVsftpdImplicitTLS(t *testing.T) {
	sourcetest.Run(t, newSource(startVsftpd(t, config.TLSImplicit), nil))
}

// baseConfig is a source config for direct calls (no poller).
func baseConfig(t *testing.T, srv *ftptest.Server) *config.Source {
	dir := t.TempDir()
	cfg := &config.Source{Name: "f", Brand: "acme", Path: dir, ResultPath: dir,
		After: config.AfterMove, Timeout: config.Duration{Time: 2 * time.Second}}
	connectTo(cfg, srv)
	return cfg
}

func TestCertificates(t *testing.T) {
	t.Parallel()
	servers := map[string]*ftptest.Server{
		"InProcessExplicit": startInProcess(t, config.TLSExplicit),
		"VsftpdImplicit":    startVsftpd(t, config.TLSImplicit),
	}
	other, err := ftptest.NewCertificates(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, srv := range servers {
		t.Run(name+"ACertificateNotSignedByACAInCAFileIsRefused", func(t *testing.T) {
			cfg := baseConfig(t, srv)
			cfg.CAFile = other.CAFile
			s := ftp.New(cfg)
			defer s.Close()
			_, err := s.List(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), "ftp: connect") ||
				!strings.Contains(err.Error(), "not signed by a CA in ca_file "+other.CAFile) {
				t.Fatalf("err %v; want the certificate refused, naming ca_file", err)
			}
		})
		t.Run(name+"ASelfSignedCertificateIsRefusedByTheSystemRoots", func(t *testing.T) {
			cfg := baseConfig(t, srv)
			cfg.CAFile = ""
			s := ftp.New(cfg)
			defer s.Close()
			_, err := s.List(context.Background())
			if err == nil || !strings.Contains(err.Error(), "not signed by a CA in the system's trusted roots") {
				t.Fatalf("err %v; want the certificate refused", err)
			}
		})
	}

	t.Run("ACAFileWithoutCertificatesIsAnError", func(t *testing.T) {
		cfg := baseConfig(t, servers["InProcessExplicit"])
		cfg.CAFile = filepath.Join(t.TempDir(), "empty.pem")
		os.WriteFile(cfg.CAFile, []byte("not a certificate\n"), 0o644)
		s := ftp.New(cfg)
		defer s.Close()
		if _, err := s.List(context.Background()); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestPlaintext(t *testing.T) {
	t.Parallel()

	t.Run("TLSNoneWithoutInsecurePlaintextIsRefusedBeforeConnecting", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var accepted atomic.Int64
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		cfg := &config.Source{Name: "f", Type: config.FTP, Address: ln.Addr().String(), Username: "u",
			PasswordEnv: config.SecretFromEnv("secret"), TLS: config.TLSNone, Path: "/x", ResultPath: "/x"}
		s := ftp.New(cfg)
		defer s.Close()
		_, err = s.List(context.Background())
		if err == nil || !strings.Contains(err.Error(), "insecure_plaintext: true") {
			t.Fatalf("err %v; want tls: none refused", err)
		}
		time.Sleep(50 * time.Millisecond)
		if n := accepted.Load(); n != 0 {
			t.Errorf("%d connections made; want none", n)
		}
	})

	t.Run("PlainFTPWithInsecurePlaintextWorksAgainstVsftpd", func(t *testing.T) {
		srv := startVsftpd(t, config.TLSNone)
		h := sourcetest.Setup(t, newSource(srv, nil))
		if !h.Cfg.InsecurePlaintext || h.Cfg.TLS != config.TLSNone {
			t.Fatalf("config %+v", h.Cfg)
		}
		h.Put("plain.csv", sourcetest.ReturnsFile(5001, "plain"), time.Hour)
		h.Poll()
		h.WantStatus(h.Poll(), "plain.csv", outcome.Completed)
		if _, err := os.Stat(filepath.Join(h.Dir, "processed", "plain.csv")); err != nil {
			t.Error(err)
		}
		if found, _ := filepath.Glob(filepath.Join(h.Cfg.ResultPath, "result_plain_*.csv")); len(found) != 1 {
			t.Errorf("result files %q", found)
		}
	})
}

// TestUploadsAreWhole: a TLS 1.3 server sends a session ticket on each data
// connection; an upload that closed without reading it lost its tail to a reset.
func TestUploadsAreWhole(t *testing.T) {
	t.Parallel()
	for _, srv := range []*ftptest.Server{startVsftpd(t, config.TLSExplicit), startInProcess(t, config.TLSExplicit)} {
		cfg := baseConfig(t, srv)
		s := ftp.New(cfg)
		defer s.Close()
		body := make([]byte, 3<<20)
		rand.Read(body)
		for i := range 3 { // several data connections, each resuming the session
			if err := s.Put(context.Background(), ingest.File{}, "result_big.bin", bytes.NewReader(body[i:])); err != nil {
				t.Fatalf("put %d: %v", i, err)
			}
			got, err := os.ReadFile(filepath.Join(cfg.ResultPath, "result_big.bin"))
			if err != nil || !bytes.Equal(got, body[i:]) {
				t.Fatalf("put %d: stored %d bytes (err %v); want %d", i, len(got), err, len(body)-i)
			}
		}
	}
}

func TestServerDownIsAnErrorAndOtherSourcesGoOn(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, config.TLSExplicit)
	up := ftp.New(baseConfig(t, srv))
	defer up.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := ln.Addr().String()
	ln.Close()
	cfg := baseConfig(t, srv)
	cfg.Address = deadAddr
	down := ftp.New(cfg)
	defer down.Close()
	if _, err := down.List(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "ftp: connect "+deadAddr) {
		t.Fatalf("down: %v", err)
	}
	if _, err := up.List(context.Background()); err != nil {
		t.Fatalf("up: %v", err)
	}
}

func TestAConnectionDroppedWhileIdleIsMadeAgain(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, config.TLSExplicit)
	p := startProxy(t)
	s := ftp.New(baseConfig(t, srv))
	defer s.Close()
	ftp.SetDial(s, p.dial)
	ftp.SetIdleCheck(s, 0)
	if _, err := s.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.dropAll() // the server closed the idle session, or a NAT forgot it
	if _, err := s.List(context.Background()); err != nil {
		t.Fatalf("the list after the drop failed: %v", err)
	}
	if n := p.dials.Load(); n < 4 { // control + data, twice
		t.Errorf("%d connections; want a new control connection", n)
	}
}

func TestAServerThatHangsFailsWithinTheTimeout(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, config.TLSExplicit)
	p := startProxy(t)
	cfg := baseConfig(t, srv)
	os.WriteFile(cfg.Path+"/big.csv", make([]byte, 4<<20), 0o644)
	s := ftp.New(cfg)
	defer s.Close()
	ftp.SetDial(s, p.dial)
	files, err := s.List(context.Background())
	if err != nil || len(files) != 1 {
		t.Fatalf("list: %v %v", files, err)
	}
	p.stallAfter(64 << 10)
	start := time.Now()
	err = s.Fetch(context.Background(), files[0], io.Discard)
	if err == nil {
		t.Fatal("a hung fetch succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hung fetch took %s; the timeout is 2s", d)
	}
	if !strings.HasPrefix(err.Error(), "ftp: fetch big.csv: ") || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("err %v; want a timeout", err)
	}
	p.stallAfter(-1)
	var buf bytes.Buffer
	if err := s.Fetch(context.Background(), files[0], &buf); err != nil || buf.Len() != 4<<20 {
		t.Fatalf("no reconnect after the hang: %v (%d bytes)", err, buf.Len())
	}
}

func TestACancelledContextEndsAHungCall(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t, config.TLSExplicit)
	p := startProxy(t)
	cfg := baseConfig(t, srv)
	cfg.Timeout = config.Duration{Time: time.Minute}
	os.WriteFile(cfg.Path+"/big.csv", make([]byte, 4<<20), 0o644)
	s := ftp.New(cfg)
	defer s.Close()
	ftp.SetDial(s, p.dial)
	files, err := s.List(context.Background())
	if err != nil || len(files) != 1 {
		t.Fatalf("list: %v %v", files, err)
	}
	p.stallAfter(64 << 10)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Fetch(ctx, files[0], io.Discard)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("err %v; want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the cancelled fetch took %s", d)
	}
}

func TestAConnectionResetMidDownloadAppliesNothingAndIsRetried(t *testing.T) {
	t.Parallel()
	srv := startVsftpd(t, config.TLSExplicit)
	p := startProxy(t)
	h := sourcetest.Setup(t, newSource(srv, p))
	// A file large enough to be cut mid-transfer: the same reversal, many notes.
	body := sourcetest.ReturnsFile(5001, "cut") + strings.Repeat("5002,RETURNED,"+strings.Repeat("y", 400)+"\n", 2000)
	h.Put("big.csv", body, time.Hour)
	h.Poll()
	p.cutAfter(256 << 10)
	rep, err := h.PollWith(h.Src)
	if err == nil {
		t.Fatal("a cut transfer succeeded")
	}
	h.WantStatus(rep, "big.csv", poller.StatusError)
	if n := h.QueryInt("SELECT count(*) FROM received_files WHERE source = $1", h.Cfg.Name); n != 0 {
		t.Fatalf("%d files received from a cut transfer", n)
	}
	p.cutAfter(-1)
	h.WantStatus(h.Poll(), "big.csv", outcome.Completed)
	if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = 5001 AND kind = 'REVERSE'"); n != 1 {
		t.Errorf("%d reversals", n)
	}
}

// proxy is a faulty network: the source dials every connection (control and
// data) through it, and it can cut or stall the server's replies after a number
// of bytes, or drop every connection.
type proxy struct {
	limit atomic.Int64 // -1: forward all; else bytes left before the fault
	stall atomic.Bool  // at the limit: stall instead of closing
	dials atomic.Int64
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T) *proxy {
	p := &proxy{}
	p.limit.Store(-1)
	t.Cleanup(func() {
		p.dropAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) cutAfter(n int64)   { p.stall.Store(false); p.limit.Store(n) }
func (p *proxy) stallAfter(n int64) { p.stall.Store(true); p.limit.Store(n) }

func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// dial connects to addr through the proxy: a loopback TCP connection whose far
// end forwards to addr.
func (p *proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p.dials.Add(1)
	var d net.Dialer
	srv, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	defer ln.Close()
	client, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		srv.Close()
		return nil, err
	}
	far, err := ln.Accept()
	if err != nil {
		srv.Close()
		client.Close()
		return nil, err
	}
	p.mu.Lock()
	p.conns = append(p.conns, far, srv)
	p.mu.Unlock()
	// Half-closes pass through (an upload ends with the client's FIN while it
	// still reads the server's last words); a fault closes both ends at once.
	clientDone := make(chan struct{})
	var both sync.WaitGroup
	both.Add(2)
	p.wg.Add(3)
	go func() {
		defer p.wg.Done()
		defer both.Done()
		io.Copy(srv, far)
		srv.(*net.TCPConn).CloseWrite()
		close(clientDone)
	}()
	go func() {
		defer p.wg.Done()
		defer both.Done()
		if p.copyReplies(far, srv, clientDone) {
			far.(*net.TCPConn).CloseWrite()
		} else {
			far.Close()
			srv.Close()
		}
	}()
	go func() {
		defer p.wg.Done()
		both.Wait()
		far.Close()
		srv.Close()
	}()
	return client, nil
}

// copyReplies forwards what the server sends, up to the limit, and reports
// whether it reached the server's end. Stalled at the limit, it drops the rest
// and holds the client's connection open and silent until the client is done
// with it (the server may well have finished and closed its end).
func (p *proxy) copyReplies(dst, src net.Conn, clientDone <-chan struct{}) bool {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if left := p.limit.Load(); left >= 0 {
				if int64(n) > left {
					if p.stall.Load() {
						io.Copy(io.Discard, src)
						<-clientDone
					}
					return false
				}
				p.limit.Add(-int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return false
			}
		}
		if err != nil {
			return err == io.EOF
		}
	}
}
