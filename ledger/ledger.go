// Package ledger is the only package that talks SQL. It owns the schema (embedded,
// numbered goose migrations), applies parsed files to the action ledger set-based
// inside one transaction per file, and reads the ledger back for results and exports.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Ledger is a handle on the ledger database. It is safe for concurrent use.
type Ledger struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
}

// Open connects to the database at url. It does not migrate; call Migrate.
// Its pool opens at most pool_max_conns connections (a parameter of the URL),
// by default pgxpool's max(4, the number of CPUs).
func Open(ctx context.Context, url string, logger *slog.Logger) (*Ledger, error) {
	return OpenPool(ctx, url, logger, 0)
}

// OpenPool is Open for a caller that may hold up to conns connections at once
// (the daemon: see daemon.Connections): unless the URL sets pool_max_conns,
// the pool opens up to that many, or pgxpool's default if that is more.
func OpenPool(ctx context.Context, url string, logger *slog.Logger, conns int32) (*Ledger, error) {
	return open(ctx, url, logger, conns, nil)
}

// open is OpenPool with a last say over the pool's configuration (a test's
// notice handler, say).
func open(ctx context.Context, url string, logger *slog.Logger, conns int32, tweak func(*pgxpool.Config)) (*Ledger, error) {
	if url == "" {
		return nil, errors.New("ledger: no database URL (set DATABASE_URL or database.url)")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The driver's message quotes the URL, and its redaction misses a password
		// the URL parser cut elsewhere (an unencoded % / @): it is never shown.
		return nil, errors.New("ledger: the database URL cannot be parsed; check its form " +
			"(postgres://user:password@host:port/database?options) and percent-encode " +
			"% @ / ? # : and spaces in the user name and password (% as %25)")
	}
	// An apply stages a file in temporary tables; the default 8 MB of temp_buffers
	// would spill a large file to disk several times over. Local buffers are taken
	// only as used, so a small file costs nothing extra.
	if _, set := cfg.ConnConfig.RuntimeParams["temp_buffers"]; !set {
		cfg.ConnConfig.RuntimeParams["temp_buffers"] = "512MB"
	}
	// JIT compiles a statement's expressions once its estimated cost passes
	// jit_above_cost, which every statement of an apply over a large ledger
	// does (and any plan with a disabled node, enable_sort=off say): 0.3 s for
	// reading back the outcomes of a one-row file, up to 8 s for a round of a
	// million rows. Each expression here runs once per row and costs less than
	// compiling it.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, conns)
	}
	if tweak != nil {
		tweak(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger: connect: %w", interpretError(err))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ledger{pool: pool, logger: logger}, nil
}

// Close releases the connections.
func (l *Ledger) Close() { l.pool.Close() }

// Pool is the ledger's connection pool, for the job queue (River), which keeps
// its own tables in the same database (see Migrate) so that enqueueing a job
// commits with the ledger change it follows from.
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }

// inTx runs fn in a transaction and commits it when fn returns nil. The rollback
// runs even when ctx is cancelled, so a cancelled apply leaves nothing behind.
func (l *Ledger) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	return interpretError(tx.Commit(ctx))
}

// lockBrand serialises, for the rest of the transaction, everything that changes one
// brand's actions: two files of a brand (or a file and the lifecycle job) never
// interleave, on one replica or many.
func lockBrand(ctx context.Context, tx pgx.Tx, brandID int64) error {
	const lockClass = 0x7265 // "re": returnsd's advisory lock namespace
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockClass, int32(brandID))
	return interpretError(err)
}

// lockBrandBySlug finds a brand by its slug and takes its lock (see lockBrand).
func lockBrandBySlug(ctx context.Context, tx pgx.Tx, slug string) (int64, error) {
	brand, err := brandID(ctx, tx, slug)
	if err != nil {
		return 0, err
	}
	return brand, lockBrand(ctx, tx, brand)
}

// ErrTransient marks failures worth retrying: the connection dropped, the server
// is restarting, a serialization conflict. Nothing was committed.
var ErrTransient = errors.New("transient database failure")

// interpretError translates driver errors at the boundary: transient ones wrap
// ErrTransient so callers can retry without knowing PostgreSQL's codes.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "53": // connection exception, operator intervention, insufficient resources
			return fmt.Errorf("%w: %w", ErrTransient, err)
		}
		if pgErr.Code == "40001" || pgErr.Code == "40P01" { // serialization failure, deadlock
			return fmt.Errorf("%w: %w", ErrTransient, err)
		}
		return err
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	var netErr *pgconn.ConnectError
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return err
}
