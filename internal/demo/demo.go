// Package demo is `returnsd demo`: the whole product on one machine with
// nothing set up. It starts a private PostgreSQL from the installed server
// binaries (installing Debian's postgresql package first when it is missing
// and it runs as root), an SFTP server (acme's), an IMAP mailbox and an SMTP
// server (the platform's), all in this process on loopback, and a local drop
// folder (globex's), in a work folder of its own. It loads the brands'
// tracking exports and partners' inquiries, lets the brands' files arrive,
// runs the real daemon (daemon.New and Run) with schedules of a few seconds,
// waits until every file is applied, answered and acknowledged and the
// lifecycle has locked what was approved, and prints what happened. Then it
// runs until stopped, and removes what it made.
//
// The story, from fixtures/ (fixtures/README.md tells it file by file):
//
//   - acme, over SFTP: acme_returns.csv (reversals, a modification, an
//     approval, rows that must be rejected) and acme_resolutions.csv (its
//     decisions on partners' inquiries: one becomes an action paid at once,
//     on an empty balance);
//   - globex, in the drop folder: Retouren_KW47.csv (windows-1252, ';',
//     decimal commas, German headers through globex's aliases) and
//     Gutschriften_KW47.csv, which is no returns file and is quarantined;
//   - acme's finance team, by mail from Outlook: acme_corrections.eml, whose
//     CSV corrects two rows the returns file had rejected; the result goes
//     back by mail, through the SMTP server.
//
// The fixtures are dated as of 2026-11-24 (fixturesAsOf). The dates of the
// files the demo loads itself (tracking exports, inquiries) are moved forward
// by whole days to today, so that nothing is locked before the files arrive
// whatever day the demo runs; the brands' files carry no dates.
package demo

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/daemon"
	"github.com/returnsd/returnsd/internal/pgcluster"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/web"
)

// Params say how the demo runs.
type Params struct {
	// Stdout gets the story; Stderr what goes wrong (and, with Verbose, the
	// daemon's log).
	Stdout, Stderr io.Writer
	// ExitWhenDone returns once the story is printed, instead of running
	// until ctx is done.
	ExitWhenDone bool
	// Keep leaves the work folder (files, results, the daemon's log, the
	// stopped cluster's data) when the demo ends. It is kept anyway when the
	// demo fails, for a look.
	Keep bool
	// NoInstall never runs apt-get: a missing PostgreSQL is an error.
	NoInstall bool
	// Wait bounds the wait for the files to be processed. Default: 2m.
	Wait time.Duration
	// Listen is the daemon's operations listener. Default: 127.0.0.1:0, a free port.
	Listen string
	// Verbose copies the daemon's log to Stderr.
	Verbose bool
}

// DefaultWait is Params.Wait's default.
const DefaultWait = 2 * time.Minute

// Schedules of the demo's daemon: every few seconds, so that the story is
// told in seconds.
const (
	pollEvery      = "@every 3s"
	lifecycleEvery = "@every 5s"
)

// Run runs the demo. It returns nil once stopped through ctx (a Ctrl-C, at
// any point), or once the story is printed with ExitWhenDone; an error if
// anything fails or the files are not processed within Wait.
func Run(ctx context.Context, p Params) (err error) {
	p.Wait = cmp.Or(p.Wait, DefaultWait)
	p.Listen = cmp.Or(p.Listen, "127.0.0.1:0")
	work, err := os.MkdirTemp("", "returnsd-demo-")
	if err != nil {
		return fmt.Errorf("demo: work folder: %w", err)
	}
	defer func() {
		switch {
		case err != nil:
			fmt.Fprintf(p.Stderr, "returnsd demo: the work folder is kept for a look: %s\n", work)
		case p.Keep:
			fmt.Fprintf(p.Stdout, "kept: %s\n", work)
		default:
			os.RemoveAll(work)
		}
	}()
	defer func() {
		if err != nil && ctx.Err() != nil { // stopped by the person watching: not a failure
			fmt.Fprintln(p.Stdout, "\nreturnsd demo: stopped")
			err = nil
		}
	}()
	// As root, the cluster's server runs as the postgres user, who must pass
	// through the work folder to its own folder in it (but need not list it).
	if err := os.Chmod(work, 0o711); err != nil {
		return fmt.Errorf("demo: work folder: %w", err)
	}
	return tell(ctx, p, work)
}

// tell is the demo in its work folder: it starts everything, lets the files
// arrive, waits for them and prints what happened, and stops everything.
func tell(ctx context.Context, p Params, work string) (err error) {
	out := p.Stdout
	began := time.Now()
	fmt.Fprintf(out, "returnsd demo: the whole product on this machine, in %s\n", work)

	section(out, "PostgreSQL: a private cluster")
	bin, err := newInstaller(p.NoInstall, out).binDir(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Parent: work, Password: pgcluster.NewPassword()})
	if err != nil {
		return fmt.Errorf("demo: start PostgreSQL: %w", err)
	}
	defer func() {
		if p.Keep || err != nil { // its data is kept with the work folder
			err = errors.Join(err, cluster.Shutdown())
		} else {
			err = errors.Join(err, cluster.Stop())
		}
	}()
	fmt.Fprintf(out, "  %s, from %s\n  data and log: %s\n", redact(cluster.URL), bin, cluster.Dir)

	srv, err := startServers(work)
	if err != nil {
		return err
	}
	defer srv.stop()
	cfgPath, err := srv.writeConfig(work, p.Listen)
	if err != nil {
		return err
	}
	cfg, err := config.LoadFile(cfgPath, func(name string) string {
		if name == "DATABASE_URL" {
			return cluster.URL
		}
		return ""
	})
	if err != nil {
		return fmt.Errorf("demo: its own config: %w", err)
	}
	srv.print(out, cfgPath)

	logFile, err := os.Create(filepath.Join(work, "returnsd.log"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()
	var logTo io.Writer = logFile
	if p.Verbose {
		logTo = io.MultiWriter(logFile, p.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}))

	section(out, "The ledger: migrated; the platform's own files loaded (returnsd import)")
	l, err := ledger.OpenPool(ctx, cfg.Database.URL, logger, daemon.Connections(cfg))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer l.Close()
	if err := l.Migrate(ctx); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := l.SyncBrands(ctx, ledger.BrandsFromConfig(cfg)); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	shift := dateShift(time.Now())
	files := &pipeline.Pipeline{Ledger: l, Limits: pipeline.Limits(cfg.Limits), Logger: logger,
		SpoolDir: filepath.Join(cfg.SpoolDir, "ledger")}
	loaded, err := load(ctx, cfg, files, filepath.Join(work, "loaded"), shift)
	if err != nil {
		return err
	}
	printLoaded(out, loaded, shift)

	section(out, "The brands' files arrive")
	sent, err := srv.deliver(arrivals, time.Now())
	if err != nil {
		return err
	}
	printSent(out, sent)

	section(out, "returnsd run, in this process")
	fmt.Fprintf(out, "  polls %s, lifecycle %s; its log: %s\n", pollEvery, lifecycleEvery, logFile.Name())
	running, err := startDaemon(ctx, daemon.Params{Config: cfg, Ledger: l, Logger: logger})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, running.stop()) }()

	fmt.Fprintf(out, "  waiting until every file is applied, answered and acknowledged (at most %s) ...\n", p.Wait)
	started := time.Now()
	w := &watcher{ledger: l, cfg: cfg, srv: srv, sent: sent}
	if err := w.waitDone(ctx, p.Wait, running.exited); err != nil {
		if ctx.Err() == nil {
			tailLog(p.Stderr, logFile.Name(), 20)
		}
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "  done, %.1fs after the daemon started (%.1fs since the demo did)\n",
		time.Since(started).Seconds(), time.Since(began).Seconds())

	if err := w.report(ctx, out); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	password, err := addDemoUser(ctx, l)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	printOperations(out, running.addr, cluster.URL, cfgPath, srv, password)
	if p.ExitWhenDone {
		return nil
	}
	then := "removed; --keep keeps it"
	if p.Keep {
		then = "kept (--keep)"
	}
	fmt.Fprintf(out, "\nreturnsd demo: running until Ctrl-C (the work folder is then %s)\n", then)
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nreturnsd demo: stopping")
		return nil
	case <-running.exited:
		return fmt.Errorf("demo: the daemon stopped: %v", running.err)
	}
}

// runningDaemon is the daemon running in a goroutine of its own.
type runningDaemon struct {
	addr   string // of its operations listener
	cancel context.CancelFunc
	exited chan struct{} // closed when Run returned, err set
	err    error
}

// startDaemon builds the daemon and runs it until stop, returning once it serves.
func startDaemon(ctx context.Context, params daemon.Params) (*runningDaemon, error) {
	ready := make(chan string, 1)
	params.Ready = func(addr string) { ready <- addr }
	d, err := daemon.New(params)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	// The daemon stops when stop says, after ctx (a Ctrl-C) is done too: the
	// demo prints that it stops first.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &runningDaemon{cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(r.exited)
		r.err = d.Run(dctx)
	}()
	select {
	case r.addr = <-ready:
		return r, nil
	case <-r.exited:
		cancel()
		return nil, fmt.Errorf("demo: the daemon stopped at once: %w", r.err)
	case <-time.After(time.Minute):
		r.stop()
		return nil, errors.New("demo: the daemon did not start within a minute")
	}
}

// stop stops the daemon as SIGTERM would and waits for it.
func (r *runningDaemon) stop() error {
	r.cancel()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(time.Minute):
		return errors.New("demo: the daemon did not stop within a minute")
	}
}

func section(w io.Writer, title string) {
	fmt.Fprintf(w, "\n== %s\n", title)
}

// redact hides a URL's password: printed where people look, not where they copy from.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.Index(u[i:], "@"); at >= 0 {
			if colon := strings.Index(u[i+3:i+at], ":"); colon >= 0 {
				return u[:i+3+colon+1] + "***" + u[i+at:]
			}
		}
	}
	return u
}

// example is the embedded example config, which the demo's config extends.
var example = string(returnsd.ExampleConfig)

// demoUser is the ops user the demo signs in to the ops pages with.
const demoUser = "demo"

// addDemoUser adds the demo's ops user with a random password, and returns it.
func addDemoUser(ctx context.Context, l *ledger.Ledger) (string, error) {
	secret := make([]byte, 12)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	password := hex.EncodeToString(secret)
	hash, err := web.HashPassword(password, 0)
	if err != nil {
		return "", err
	}
	err = l.AddWebUser(ctx, ledger.AddWebUserParams{Name: demoUser, Role: ledger.RoleOps, PasswordHash: hash, Actor: "demo"})
	return password, err
}
