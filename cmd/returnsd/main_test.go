package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the real binary the process tests run (buildReturnsd): built
// once per test run, into a folder TestMain removes.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildReturnsd builds the real binary, once, and returns its path.
func buildReturnsd(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "returnsd-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "returnsd")
		if out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// cli runs the returnsd command line in-process, as main would, against its own database.
type cli struct {
	t   testing.TB
	env map[string]string
	// stdin is what the next command reads from its standard input.
	stdin string
}

// outcomeOf is what one command line did: its exit status and its output.
type outcomeOf struct {
	code   int
	stdout string
	stderr string
}

// testBundle is what a test of the command line works with besides the cli.
type testBundle struct {
	dbURL string
	dir   string // a temporary folder holding a copy of fixtures/
	db    *pgx.Conn
}

// setup gives a test a cli on a fresh, empty database (not migrated) and a folder
// holding a copy of the fixtures. RETURNSD_CONFIG is unset: the embedded example
// config (brands acme and globex) is used.
func setup(t *testing.T) (*cli, *testBundle) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	err := fs.WalkDir(returnsd.Fixtures, "fixtures", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := returnsd.Fixtures.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, d.Name()), data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy fixtures: %v", err)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	c := &cli{t: t, env: map[string]string{"DATABASE_URL": url, "USER": "tester"}}
	return c, &testBundle{dbURL: url, dir: dir, db: conn}
}

// setupLoaded is setup with the schema migrated and acme's fixture actions imported.
func setupLoaded(t *testing.T) (*cli, *testBundle) {
	t.Helper()
	c, b := setup(t)
	c.mustRun("migrate")
	c.mustRun("import", "actions", "--brand", "acme", b.path("acme_actions.csv"))
	return c, b
}

func (c *cli) getenv(k string) string { return c.env[k] }

// run runs one command line and returns its exit status and output, as the binary would.
func (c *cli) run(args ...string) outcomeOf {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, c.getenv, strings.NewReader(c.stdin), &stdout, &stderr)
	code := exitCode(err, &stderr)
	return outcomeOf{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun runs a command line that must succeed and returns its stdout.
func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	o := c.run(args...)
	if o.code != 0 {
		c.t.Fatalf("returnsd %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), o.code, o.stdout, o.stderr)
	}
	return o.stdout
}

// exportCSV is `returnsd export actions --brand acme`: the ledger's current state of acme's actions.
func (c *cli) exportCSV() string {
	c.t.Helper()
	return c.mustRun("export", "actions", "--brand", "acme")
}

func (b *testBundle) path(name string) string { return filepath.Join(b.dir, name) }

// queryInt runs a query returning one integer.
func (b *testBundle) queryInt(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// receivedFile is a row of received_files.
type receivedFile struct {
	id         int64
	name       string
	status     string
	reasonCode string
	reason     string
	bytesKept  bool
	size       int64
	sha256     []byte
}

// receivedFiles lists received_files in id order.
func (b *testBundle) receivedFiles(t testing.TB) []receivedFile {
	t.Helper()
	rows, err := b.db.Query(context.Background(), `
		SELECT id, name, status, coalesce(reason_code, ''), coalesce(reason, ''), bytes_kept, size, sha256
		FROM received_files ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	files, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (receivedFile, error) {
		var f receivedFile
		err := r.Scan(&f.id, &f.name, &f.status, &f.reasonCode, &f.reason, &f.bytesKept, &f.size, &f.sha256)
		return f, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// storedSHA256 is the SHA-256 of the bytes the ledger kept for a file, read back
// through ledger.FileBytes (what a download of the original serves).
func (b *testBundle) storedSHA256(t testing.TB, fileID int64) [32]byte {
	t.Helper()
	ctx := context.Background()
	l, err := ledger.Open(ctx, b.dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := sha256.New()
	if err := l.FileBytes(ctx, fileID, h); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSHA256(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// readCSV parses a CSV file or text into records.
func readCSV(t testing.TB, text string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v\n%s", err, text)
	}
	return recs
}

// writeConfig writes the example config with edits applied (old → new, each
// of which must occur) and returns its path.
func writeConfig(t testing.TB, dir string, edits ...string) string {
	t.Helper()
	text := string(returnsd.ExampleConfig)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(text, edits[i]) {
			t.Fatalf("the example config has no %q to edit", edits[i])
		}
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	path := filepath.Join(dir, "returnsd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
