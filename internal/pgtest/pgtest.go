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
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/returnsd/returnsd/internal/pgcluster"
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
type Server = pgcluster.Cluster

// Start initialises a cluster in a new temporary directory and starts it on a free
// loopback port (see pgcluster.Start: as root the server runs as the `postgres`
// user). Durability is switched off: this server holds test data only. settings
// ("name=value") are added to, or override, pgcluster.DefaultSettings.
func Start(ctx context.Context, settings ...string) (*Server, error) {
	return pgcluster.Start(ctx, pgcluster.Options{Settings: settings})
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
