package pgcluster

import (
	"context"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestACluster(t *testing.T) {
	t.Run("WithAPasswordRefusesConnectionsWithoutItAndIsGoneAfterStop", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		parent, err := os.MkdirTemp("", "pgcluster-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(parent) })
		if err := os.Chmod(parent, 0o711); err != nil { // as root, the postgres user passes through it
			t.Fatal(err)
		}
		c, err := Start(ctx, Options{Parent: parent, Password: NewPassword(), Settings: []string{"max_connections=20"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Stop() })

		conn, err := pgx.Connect(ctx, c.URL)
		if err != nil {
			t.Fatalf("connect with the password: %v", err)
		}
		var maxConns string
		if err := conn.QueryRow(ctx, "SHOW max_connections").Scan(&maxConns); err != nil || maxConns != "20" {
			t.Errorf("max_connections = %q (%v); want the setting given, 20", maxConns, err)
		}
		conn.Close(ctx)

		u, _ := url.Parse(c.URL)
		u.User = url.UserPassword("postgres", "wrong")
		_, err = pgx.Connect(ctx, u.String())
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Errorf("a wrong password: %v; want invalid_password (28P01)", err)
		}

		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the cluster's folder is still there after Stop: %v", err)
		}
		if _, err := pgx.Connect(ctx, c.URL); err == nil {
			t.Error("the server still answers after Stop")
		}
	})
}
