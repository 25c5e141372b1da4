package sftp_test

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/sftp"
	"github.com/returnsd/returnsd/ingest/sftp/sshtest"
	"github.com/returnsd/returnsd/ingest/sourcetest"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newSource returns a NewSource reaching srv (at addr, when given: a proxy) with its client key.
func newSource(srv *sshtest.Server, addr string) sourcetest.NewSource {
	return func(t *testing.T, cfg *config.Source) ingest.Source {
		cfg.Type, cfg.Address, cfg.Username = config.SFTP, srv.Addr, srv.User
		if addr != "" {
			cfg.Address = addr
		}
		cfg.KnownHosts, cfg.PrivateKeyFile = srv.KnownHosts, srv.KeyFile
		if addr != "" && addr != srv.Addr {
			// The proxy's address must be pinned too: the same host key.
			p, err := srv.WriteKnownHosts("known_hosts_"+strings.ReplaceAll(addr, ":", "_"), addr, srv.HostKey.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			cfg.KnownHosts = p
		}
		s := sftp.New(cfg)
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func startInProcess(t *testing.T) *sshtest.Server {
	t.Helper()
	srv, err := sshtest.StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// startOpenSSH starts Debian's sshd. A missing sshd fails the test, never skips it:
// scripts/test installs openssh-server.
func startOpenSSH(t *testing.T) *sshtest.Server {
	t.Helper()
	srv, err := sshtest.StartOpenSSH()
	if err != nil {
		t.Fatalf("OpenSSH: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

func TestConformanceInProcess(t *testing.T) {
	sourcetest.Run(t, newSource(startInProcess(t), ""))
}

func TestConformanceOpenSSH(t *testing.T) {
	sourcetest.Run(t, newSource(startOpenSSH(t), ""))
}

// baseConfig is a source config for direct calls (no poller).
func baseConfig(t *testing.T, srv *sshtest.Server) *config.Source {
	dir := t.TempDir()
	return &config.Source{Name: "s", Brand: "acme", Type: config.SFTP, Address: srv.Addr, Username: srv.User,
		KnownHosts: srv.KnownHosts, PrivateKeyFile: srv.KeyFile, Path: dir, ResultPath: dir,
		After: config.AfterMove, Timeout: config.Duration{Time: 2 * time.Second}}
}

func TestHostKeys(t *testing.T) {
	t.Parallel()
	srv := startOpenSSH(t)

	t.Run("AChangedHostKeyIsRefused", func(t *testing.T) {
		cfg := baseConfig(t, srv)
		other, _, err := sshtest.NewSigner()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.KnownHosts, err = srv.WriteKnownHosts("changed", srv.Addr, other.PublicKey()); err != nil {
			t.Fatal(err)
		}
		s := sftp.New(cfg)
		defer s.Close()
		_, err = s.List(context.Background())
		if err == nil || !strings.Contains(err.Error(), "CHANGED") || !strings.HasPrefix(err.Error(), "sftp: ") {
			t.Fatalf("err %v; want a refused, changed host key", err)
		}
	})

	t.Run("AnUnknownHostIsRefused", func(t *testing.T) {
		cfg := baseConfig(t, srv)
		cfg.KnownHosts = t.TempDir() + "/known_hosts"
		if _, err := srv.WriteKnownHosts("elsewhere", "127.0.0.2:22", srv.HostKey.PublicKey()); err != nil {
			t.Fatal(err)
		}
		cfg.KnownHosts = srv.Dir + "/elsewhere"
		s := sftp.New(cfg)
		defer s.Close()
		_, err := s.List(context.Background())
		if err == nil || !strings.Contains(err.Error(), "not in known_hosts") {
			t.Fatalf("err %v; want an unknown host refused", err)
		}
	})

	t.Run("APasswordFromTheEnvironmentLogsIn", func(t *testing.T) {
		inproc := startInProcess(t)
		cfg := baseConfig(t, inproc)
		cfg.PrivateKeyFile = ""
		cfg.PasswordFile = t.TempDir() + "/pw"
		os.WriteFile(cfg.PasswordFile, []byte(inproc.Password+"\n"), 0o600)
		s := sftp.New(cfg)
		defer s.Close()
		if _, err := s.List(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestServerDownIsAnErrorAndOtherSourcesGoOn(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t)
	up := sftp.New(baseConfig(t, srv))
	defer up.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := ln.Addr().String()
	ln.Close()
	cfg := baseConfig(t, srv)
	cfg.Address = deadAddr
	down := sftp.New(cfg)
	defer down.Close()
	if _, err := down.List(context.Background()); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("down: %v", err)
	}
	if _, err := up.List(context.Background()); err != nil {
		t.Fatalf("up: %v", err)
	}
}

func TestAServerThatHangsFailsWithinTheTimeout(t *testing.T) {
	t.Parallel()
	srv := startInProcess(t)
	p := startProxy(t, srv.Addr)
	cfg := baseConfig(t, srv)
	cfg.Address = p.addr
	cfg.KnownHosts, _ = srv.WriteKnownHosts("kh_hang", p.addr, srv.HostKey.PublicKey())
	os.WriteFile(cfg.Path+"/big.csv", make([]byte, 4<<20), 0o644)
	s := sftp.New(cfg)
	defer s.Close()
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
	p.stallAfter(-1)
	if err := s.Fetch(context.Background(), files[0], io.Discard); err != nil {
		t.Fatalf("no reconnect after the hang: %v", err)
	}
}

func TestAConnectionResetMidDownloadAppliesNothingAndIsRetried(t *testing.T) {
	t.Parallel()
	srv := startOpenSSH(t)
	p := startProxy(t, srv.Addr)
	h := sourcetest.Setup(t, func(t *testing.T, cfg *config.Source) ingest.Source {
		return newSource(srv, p.addr)(t, cfg)
	})
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

// proxy forwards TCP to a server and can cut or stall the server's replies after
// a number of bytes, as a broken network would.
type proxy struct {
	addr  string
	ln    net.Listener
	limit atomic.Int64 // -1: forward all; else bytes left before the fault
	stall atomic.Bool  // at the limit: stall instead of closing
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	p.limit.Store(-1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer p.wg.Done(); p.copyReplies(c, s); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) cutAfter(n int64)   { p.stall.Store(false); p.limit.Store(n) }
func (p *proxy) stallAfter(n int64) { p.stall.Store(true); p.limit.Store(n) }

func (p *proxy) copyReplies(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if left := p.limit.Load(); left >= 0 {
				if int64(n) > left {
					if p.stall.Load() {
						// Hold the connection open and silent until it is closed.
						io.Copy(io.Discard, src)
						return
					}
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
