package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/pipeline"
)

const usage = `returnsd applies brands' batch files to the action ledger.

Usage:
  returnsd run                                       the daemon: poll the sources, apply their files, lock and
                                                     pay, auto-resolve inquiries, each on its schedule, until
                                                     SIGTERM or SIGINT (a second one exits at once)
  returnsd migrate                                   bring the database schema up to date (the ledger and the
                                                     job queue)
  returnsd import actions --brand B FILE             load a brand's tracked actions
  returnsd import inquiries --brand B FILE           load partners' action inquiries
  returnsd apply --brand B [--kind K] [--dry-run] [--result FILE] FILE
                                                     apply a brand's file: returns/modifications/approvals
                                                     (action-updates) or inquiry-resolutions; detected
                                                     from the header unless --kind says
  returnsd export actions --brand B [--format csv|json]
                                                     print the current state of every action
  returnsd export inquiries --brand B [--format csv|json]
                                                     print every inquiry and its resolution
  returnsd inquiries auto-resolve [--brand B]        decline open inquiries whose order is already tracked
                                                     (brands with contract.inquiries.auto_resolve)
  returnsd poll SOURCE                               poll one configured source now and apply what it finds
  returnsd lifecycle [--at TIME]                     lock and pay due actions (TIME: RFC 3339, default now)
  returnsd funds deposit --brand B AMOUNT            credit a brand's funds, release delayed payouts
  returnsd export balances [--format csv|json]       print every brand's balance and delayed payouts
  returnsd check-config [--at TIME]                  validate the config without a database and print when
                                                     each schedule runs next (TIME: RFC 3339, default now);
                                                     each problem on its own line, exit status 1

Every command takes --config FILE (default: $RETURNSD_CONFIG, else the embedded
example config). The database is DATABASE_URL, else the config's database.url.
`

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// quarantinedError reports a file that was quarantined: exit status 3.
type quarantinedError struct{ msg string }

func (e *quarantinedError) Error() string { return e.msg }

// exitCode prints err as one line and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "returnsd: "+safetext.Printable(strings.ReplaceAll(err.Error(), "\n", "; ")))
	var u *usageError
	var q *quarantinedError
	switch {
	case errors.As(err, &u):
		fmt.Fprintln(stderr, "run 'returnsd help' for usage")
		return 2
	case errors.As(err, &q):
		return 3
	}
	return 1
}

// env is what a command runs with: its configuration, output and environment.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	cfg    *config.Config
	logger *slog.Logger
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	// "returnsd --config F apply ..." means "returnsd apply --config F ...".
	var global []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "--config" || args[0] == "-config" {
			if len(args) < 2 {
				return usagef("--config needs a FILE")
			}
			global, args = append(global, args[:2]...), args[2:]
			continue
		}
		if strings.HasPrefix(args[0], "--config=") || strings.HasPrefix(args[0], "-config=") {
			global, args = append(global, args[0]), args[1:]
			continue
		}
		return usagef("unknown flag %s before the command", args[0])
	}
	if len(args) == 0 {
		return usagef("no command")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "migrate":
		return e.migrate(ctx, append(rest, global...))
	case "run":
		return e.runDaemon(ctx, append(rest, global...))
	case "apply":
		return e.apply(ctx, append(rest, global...))
	case "import":
		switch {
		case len(rest) > 0 && rest[0] == "actions":
			return e.importActions(ctx, append(rest[1:], global...))
		case len(rest) > 0 && rest[0] == "inquiries":
			return e.importInquiries(ctx, append(rest[1:], global...))
		}
		return usagef("import: say what to import: import actions|inquiries --brand B FILE")
	case "inquiries":
		if len(rest) == 0 || rest[0] != "auto-resolve" {
			return usagef("inquiries: say what to do: inquiries auto-resolve [--brand B]")
		}
		return e.autoResolve(ctx, append(rest[1:], global...))
	case "poll":
		return e.poll(ctx, append(rest, global...))
	case "export":
		if len(rest) > 0 && rest[0] == "balances" {
			return e.exportBalances(ctx, append(rest[1:], global...))
		}
		if len(rest) > 0 && rest[0] == "inquiries" {
			return e.exportInquiries(ctx, append(rest[1:], global...))
		}
		if len(rest) == 0 || rest[0] != "actions" {
			return usagef("export: say what to export: export actions|inquiries --brand B, or export balances")
		}
		return e.exportActions(ctx, append(rest[1:], global...))
	case "lifecycle":
		return e.lifecycle(ctx, append(rest, global...))
	case "check-config":
		return e.checkConfig(ctx, append(rest, global...))
	case "funds":
		if len(rest) == 0 || rest[0] != "deposit" {
			return usagef("funds: say what to do: funds deposit --brand B AMOUNT")
		}
		return e.fundsDeposit(ctx, append(rest[1:], global...))
	default:
		return usagef("unknown command %q", cmd)
	}
}

// flags is a command's flag set with the flags every command has.
func (e *env) flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := fs.String("config", "", "configuration file (default: $RETURNSD_CONFIG, else the embedded example)")
	return fs, cfg
}

// parse parses args, allowing flags after positional arguments
// ("apply returns.csv --brand acme" works too), and loads the config.
func (e *env) parse(fs *flag.FlagSet, cfgPath *string, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if err := e.loadConfig(*cfgPath); err != nil {
		return nil, err
	}
	return positional, nil
}

func (e *env) loadConfig(path string) error {
	if path == "" {
		path = e.getenv("RETURNSD_CONFIG")
	}
	var cfg *config.Config
	var err error
	if path == "" {
		cfg, err = config.Load(strings.NewReader(string(returnsd.ExampleConfig)), e.getenv)
	} else {
		cfg, err = config.LoadFile(path, e.getenv)
	}
	if err != nil {
		return err
	}
	if url := e.getenv("DATABASE_URL"); url != "" {
		cfg.Database.URL = url
	}
	e.cfg = cfg
	e.logger = newLogger(cfg.Log, e.stderr)
	return nil
}

func newLogger(l config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openBrandLedger finds a brand of the config and opens the ledger for a command
// about that brand. The caller closes the ledger.
func (e *env) openBrandLedger(ctx context.Context, slug string) (*config.Brand, *ledger.Ledger, error) {
	b, err := e.cfg.Brand(slug)
	if err != nil {
		return nil, nil, err
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return nil, nil, err
	}
	return b, l, nil
}

// openLedger connects, checks the schema is current and syncs the config's brands.
func (e *env) openLedger(ctx context.Context) (*ledger.Ledger, error) {
	return e.openLedgerPool(ctx, 0)
}

// openLedgerPool is openLedger for a command that may hold up to conns
// connections at once (see ledger.OpenPool).
func (e *env) openLedgerPool(ctx context.Context, conns int32) (*ledger.Ledger, error) {
	if e.cfg.Database.URL == "" {
		return nil, errors.New("no database: set DATABASE_URL or database.url in the config")
	}
	l, err := ledger.OpenPool(ctx, e.cfg.Database.URL, e.logger, conns)
	if err != nil {
		return nil, err
	}
	if err := l.CheckSchema(ctx); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.SyncBrands(ctx, ledger.BrandsFromConfig(e.cfg)); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (e *env) pipeline(l *ledger.Ledger) *pipeline.Pipeline {
	return &pipeline.Pipeline{Ledger: l, Limits: pipeline.Limits(e.cfg.Limits), Logger: e.logger,
		SpoolDir: filepath.Join(e.cfg.SpoolDir, "ledger")}
}

// actor names the person at the terminal in the ledger's events.
func (e *env) actor() string {
	name := e.getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	return "cli:" + name
}

func (e *env) migrate(ctx context.Context, args []string) error {
	fs, cfg := e.flags("migrate")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate takes no arguments")
	}
	if e.cfg.Database.URL == "" {
		return errors.New("no database: set DATABASE_URL or database.url in the config")
	}
	l, err := ledger.Open(ctx, e.cfg.Database.URL, e.logger)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "schema is up to date")
	return nil
}
