// Package pgcluster starts a throwaway PostgreSQL cluster from the installed
// server binaries: initdb in a folder of its own, pg_ctl start on a free
// loopback port, and Stop removes it all. The tests (internal/pgtest) and
// `returnsd demo` use it; the daemon itself never starts a PostgreSQL.
//
// PostgreSQL refuses to run as root, so as root the cluster runs as the
// `postgres` user (Debian's postgresql package creates it), and its folder
// belongs to that user.
package pgcluster

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
	"time"
)

// ErrNotInstalled is returned when the server binaries (initdb, pg_ctl) are
// neither on PATH nor in Debian's /usr/lib/postgresql/*/bin.
var ErrNotInstalled = errors.New("PostgreSQL's server binaries (initdb, pg_ctl) are not on PATH or in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")

// DefaultSettings are the server settings of a throwaway cluster: loopback
// only, and no durability (fsync off), since it holds nothing worth a crash
// recovery; room for the connections of many tests at once.
var DefaultSettings = []string{
	"listen_addresses=127.0.0.1",
	"fsync=off", "synchronous_commit=off", "full_page_writes=off",
	"max_connections=200", "shared_buffers=256MB", "work_mem=64MB",
	"maintenance_work_mem=256MB", "max_wal_size=4GB", "checkpoint_timeout=30min",
}

// Options change the cluster Start makes.
type Options struct {
	// Parent is the folder the cluster's own folder is made in (as root it
	// must be searchable by the postgres user). Default: os.TempDir().
	Parent string
	// Settings ("name=value") are added to, or override, DefaultSettings.
	Settings []string
	// Password, when set, is required of TCP connections (SCRAM) and is in
	// URL; without it any local user may connect as the superuser, which is
	// fine for tests but not for a cluster that stays up while people watch.
	Password string
	// StartTimeout bounds pg_ctl start. Default: 60s.
	StartTimeout time.Duration
}

// Cluster is a running throwaway cluster.
type Cluster struct {
	// URL reaches its postgres database as the superuser postgres.
	URL string
	// Dir is the cluster's folder: data/ and server.log.
	Dir string

	pgctl  string
	asUser *syscall.Credential
}

// BinDir finds the PostgreSQL server binaries: on PATH, or in Debian's
// versioned directory (the newest version). ErrNotInstalled if neither.
func BinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// versionOf is the major version in /usr/lib/postgresql/N/bin, so 17 sorts above 9.6.
func versionOf(dir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
	return v
}

// Start initialises a cluster in a new folder under opts.Parent and starts it
// on a free loopback port. On failure nothing is left behind.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.Parent, "returnsd-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	c := &Cluster{Dir: dir, pgctl: filepath.Join(bin, "pg_ctl")}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root needs a postgres user to run the server as: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.asUser = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := []string{"-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"}
	if opts.Password != "" {
		pwfile := filepath.Join(dir, "pwfile")
		if err := os.WriteFile(pwfile, []byte(opts.Password+"\n"), 0o600); err != nil {
			return fail(err)
		}
		if c.asUser != nil {
			if err := os.Chown(pwfile, int(c.asUser.Uid), int(c.asUser.Gid)); err != nil {
				return fail(err)
			}
		}
		// The socket, in the cluster's own folder, is for its owner; TCP needs the password.
		initdb = append(initdb, "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile)
		defer os.Remove(pwfile)
	} else {
		initdb = append(initdb, "-A", "trust")
	}
	if out, err := c.run(ctx, filepath.Join(bin, "initdb"), initdb...); err != nil {
		if c.asUser != nil && errors.Is(err, os.ErrPermission) {
			err = fmt.Errorf("%w (the postgres user must be able to reach %s)", err, dir)
		}
		return fail(fmt.Errorf("initdb: %w: %s", err, out))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	args := []string{"-p " + strconv.Itoa(port), "-k " + dir}
	for _, kv := range append(append([]string{}, DefaultSettings...), opts.Settings...) {
		args = append(args, "-c "+kv)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	if out, err := c.run(ctx, c.pgctl, "-D", data, "-l", filepath.Join(dir, "server.log"),
		"-o", strings.Join(args, " "), "-w", "-t", strconv.Itoa(int(timeout.Seconds())), "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		c.run(context.WithoutCancel(ctx), c.pgctl, "-D", data, "-m", "immediate", "-w", "stop")
		return fail(fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log))
	}
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: "127.0.0.1:" + strconv.Itoa(port),
		Path: "/postgres", RawQuery: "sslmode=disable"}
	if opts.Password != "" {
		u.User = url.UserPassword("postgres", opts.Password)
	}
	c.URL = u.String()
	return c, nil
}

// Shutdown stops the server at once (it holds nothing worth a clean
// shutdown) and leaves its folder.
func (c *Cluster) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := c.run(ctx, c.pgctl, "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Stop stops the server and removes its folder.
func (c *Cluster) Stop() error {
	err := c.Shutdown()
	return errors.Join(err, os.RemoveAll(c.Dir))
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.Dir
	if c.asUser != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.asUser}
	}
	return cmd.CombinedOutput()
}

// NewPassword returns a random password for Options.Password.
func NewPassword() string {
	var b [18]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
