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
  returnsd demo [--exit-when-done] [--keep] [--no-install] [--wait D] [--listen ADDR] [-v]
                                                     the whole product on this machine, nothing set up: a private
                                                     PostgreSQL (as root, installs Debian's postgresql if missing;
                                                     --no-install never does), in-process SFTP, IMAP and SMTP
                                                     servers and a drop folder, two brands' files arriving, the
                                                     daemon applying and answering them; prints what happened
                                                     (within --wait, default 2m) and runs until Ctrl-C.
                                                     --exit-when-done stops once printed; --keep keeps the work
                                                     folder; --listen sets the ops listener (default: a free
                                                     port); -v copies the daemon's log to stderr
  returnsd run                                       the daemon: poll the sources, apply their files, lock and
                                                     pay, auto-resolve and auto-approve inquiries, each on its
                                                     schedule, until SIGTERM or SIGINT (a second one exits at
                                                     once)
  returnsd migrate                                   bring the database schema up to date (the ledger and the
                                                     job queue)
  returnsd import actions --brand B FILE             load a brand's tracked actions
  returnsd import inquiries --brand B FILE           load partners' action inquiries
  returnsd apply --brand B [--kind K] [--dry-run] [--result FILE] FILE
                                                     apply a brand's file: returns/modifications/approvals
                                                     (action-updates) or inquiry-resolutions; detected
                                                     from the header unless --kind says
  returnsd export actions --brand B [--format csv|json] [--state S,...] [--partner P] [--from D] [--to D]
                                                     print the current state of the brand's actions (filtered by
                                                     state, partner, event date from/to: days in the brand's zone)
  returnsd export inquiries --brand B|--partner P [--format csv|json] [--state S,...] [--type T,...]
                          [--from D] [--to D] [--resolved-from D] [--resolved-to D] [--since TIME] [--at TIME]
                                                     print inquiries as the partner's list shows them: a brand's,
                                                     or a partner's with every brand (its status file: --since
                                                     its last one); filtered by status, type, submission and
                                                     resolution dates (days in the brand's zone); open ones past
                                                     the brand's resolution deadline are Overdue
  returnsd inquiries auto-resolve [--brand B]        decline open inquiries whose order is already tracked
                                                     (brands with contract.inquiries.auto_resolve)
  returnsd inquiries auto-approve [--brand B] [--at TIME]
                                                     approve NEW inquiries whose Auto Approval Date has come
                                                     (brands with contract.inquiries.auto_approve; TIME: RFC
                                                     3339, default now)
  returnsd inquiries notify [--at TIME]              mail partners (contract.partners[].contact) each change of
                                                     their inquiries not yet told, through the smtp section
  returnsd poll SOURCE                               poll one configured source now and apply what it finds
  returnsd files list [--brand B] [--status S] [--since T] [--limit N] [--format text|json]
                                                     the received files, newest first (S: RECEIVED, COMPLETED,
                                                     DUPLICATE_FILE, QUARANTINED; T: a time, a date, or how
                                                     long ago: 24h, 7d)
  returnsd files show FILE_ID [--format text|json]   a file: status, timings, rows by outcome and code, what it
                                                     is linked to (reprocess, retry, archive), who asked
  returnsd files download FILE_ID [--result] [-o FILE]
                                                     the bytes received, or (--result) the result or receipt the
                                                     brand got; default FILE: its name here (- for stdout)
  returnsd files reprocess FILE_ID [--actor A]       run a quarantined file again, once its config is mended:
                                                     a new file linked to it, applied and answered to the brand
  returnsd files retry-rejected FILE_ID [--actor A]  run again the rows of a completed file rejected
                                                     ACTION_NOT_FOUND or INQUIRY_NOT_FOUND that no retry applied
                                                     yet: a new file of them, at their lines, applied and answered
                                                     (A: who asks, default cli:$USER)
  returnsd files answer FILE_ID                      send a reprocess's or retry's answer that did not get through
  returnsd lifecycle [--at TIME]                     lock and pay due actions (TIME: RFC 3339, default now)
  returnsd funds deposit --brand B AMOUNT            credit a brand's funds, release delayed payouts
  returnsd export balances [--brand B] [--format csv|json]
                                                     print every brand's balance and delayed payouts
  returnsd report [--date D] [--brand B] [--format html|csv|json] [--tz ZONE] [-o FILE]
                                                     the daily processing report of day D (YYYY-MM-DD, today or
                                                     yesterday, the default) in the config's report.timezone
                                                     (UTC) unless --tz; format from -o's extension, else html
  returnsd check-config [--at TIME]                  validate the config without a database and print when
                                                     each schedule runs next (TIME: RFC 3339, default now);
                                                     each problem on its own line, exit status 1
  returnsd users add (--role ops | --brand B [--brand B2]) NAME
                                                     add a user of the ops pages: ops (every brand, the
                                                     controls) or a read-only user of brand B; the password is
                                                     asked for (twice) on a terminal, else read as the first
                                                     line of stdin: never an argument
  returnsd users passwd NAME                         set a user's password (read as for add); signs them out
  returnsd users remove NAME                         remove a user and their sessions
  returnsd users list                                the users, their roles, brands and last sign-in
  returnsd healthcheck [--url URL] [--timeout D]     GET the daemon's /healthz (default: on the config's
                                                     http.listen, over loopback), exit status 0 on 200,
                                                     else 1: a container's HEALTHCHECK; needs no database

Every command but demo takes --config FILE (default: $RETURNSD_CONFIG, else the embedded
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
	stdin  io.Reader // passwords (returnsd users), when not a terminal
	stdout io.Writer
	stderr io.Writer
	cfg    *config.Config
	logger *slog.Logger
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
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
	case "demo":
		return e.demo(ctx, append(rest, global...))
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
		switch {
		case len(rest) > 0 && rest[0] == "auto-resolve":
			return e.autoResolve(ctx, append(rest[1:], global...))
		case len(rest) > 0 && rest[0] == "auto-approve":
			return e.autoApprove(ctx, append(rest[1:], global...))
		case len(rest) > 0 && rest[0] == "notify":
			return e.notify(ctx, append(rest[1:], global...))
		}
		return usagef("inquiries: say what to do: inquiries auto-resolve|auto-approve [--brand B], or inquiries notify")
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
	case "files":
		if len(rest) == 0 {
			return e.files(ctx, rest)
		}
		return e.files(ctx, append(rest, global...))
	case "report":
		return e.reportCmd(ctx, append(rest, global...))
	case "lifecycle":
		return e.lifecycle(ctx, append(rest, global...))
	case "check-config":
		return e.checkConfig(ctx, append(rest, global...))
	case "healthcheck":
		return e.healthcheck(ctx, append(rest, global...))
	case "users":
		return e.users(ctx, rest, global)
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
