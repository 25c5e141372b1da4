// Package pgtest gives tests a real PostgreSQL: a throwaway cluster started from the
// installed binaries when TEST_DATABASE_URL is not set, and a fresh database per test.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and in a test:
//
//	url := pgtest.NewDatabase(t)
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// EnvURL names the variable holding the server's URL. When it is set, no server is started.
const EnvURL = "TEST_DATABASE_URL"

// Main runs the package's tests against TEST_DATABASE_URL, or against a cluster it
// starts (and removes afterwards) when that is not set. A server that cannot be
// started fails the run: tests never skip for want of a database. It also checks
// for leaked goroutines.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns the exit code, for a TestMain that
// has its own cleanup to do before it exits.
func Run(m *testing.M) int {
	if os.Getenv(EnvURL) == "" {
		srv, err := Start(context.Background())
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: cannot start PostgreSQL (set %s to use a running one): %v\n", EnvURL, err)
			return 1
		}
		defer srv.Stop()
		os.Setenv(EnvURL, srv.URL)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			return 1
		}
	}
	return code
}

// Server is a throwaway PostgreSQL cluster in a temporary directory.
type Server struct {
	URL    string
	dir    string
	pgctl  string
	asUser *syscall.Credential
}

// Start initialises a cluster in a new temporary directory and starts it on a free
// loopback port. As root it runs the server as the `postgres` user, since PostgreSQL
// refuses to run as root. Durability is switched off: this server holds test data
// only. settings ("name=value") are added to, or override, the server's defaults.
func Start(ctx context.Context, settings ...string) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "returnsd-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, pgctl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.asUser = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"-p " + strconv.Itoa(port), "-k " + dir}
	for _, kv := range append([]string{"listen_addresses=127.0.0.1",
		"fsync=off", "synchronous_commit=off", "full_page_writes=off",
		"max_connections=200", "shared_buffers=256MB", "work_mem=64MB",
		"maintenance_work_mem=256MB", "max_wal_size=4GB", "checkpoint_timeout=30min",
	}, settings...) {
		args = append(args, "-c "+kv)
	}
	opts := strings.Join(args, " ")
	if out, err := s.run(ctx, s.pgctl, "-D", data, "-l", filepath.Join(dir, "server.log"),
		"-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
	}
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return s, nil
}

// Stop shuts the server down at once and removes its directory.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.run(ctx, s.pgctl, "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
}

func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	if s.asUser != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.asUser}
	}
	return cmd.CombinedOutput()
}

// binDir finds the PostgreSQL server binaries: on PATH, or Debian's versioned directory.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NewDatabase creates an empty database for this test on the server of
// TEST_DATABASE_URL and drops it when the test ends. It returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Fatalf("pgtest: %s is not set; call pgtest.Main from TestMain", EnvURL)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: connect for cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}
