package ledger

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"strings"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the schema up to date: the ledger's tables, then the job
// queue's (River's own migrations, at the version of the River this binary is
// built with). It is safe to run from several replicas at once: goose takes a
// session lock while it migrates, and River's migrations run under a lock of
// ours.
func (l *Ledger) Migrate(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(l.pool)
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return fmt.Errorf("ledger: migrate: %w", err)
	}
	if err := l.migrateJobs(ctx); err != nil {
		return fmt.Errorf("ledger: migrate the job queue: %w", err)
	}
	return nil
}

func (l *Ledger) migrateJobs(ctx context.Context) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(l.pool), nil)
	if err != nil {
		return err
	}
	// River's migrations each run in a transaction of their own (one adds an
	// enum value, which must commit before it is used), so the lock that keeps
	// two replicas from running them at once is a session lock.
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return interpretError(err)
	}
	defer conn.Release()
	const lockClass = 0x726d // "rm": River's migrations
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, 0)", lockClass); err != nil {
		return interpretError(err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, 0)", lockClass); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // the lock dies with the session
		}
	}()
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

func migrate(ctx context.Context, db *sql.DB) error {
	provider, err := newProvider(db)
	if err != nil {
		return err
	}
	_, err = provider.Up(ctx)
	return err
}

// CheckSchema returns an error saying to run `returnsd migrate` when the schema
// is behind this binary, so no command runs against tables it does not expect.
func (l *Ledger) CheckSchema(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(l.pool)
	defer db.Close()
	provider, err := newProvider(db)
	if err != nil {
		return fmt.Errorf("ledger: schema: %w", err)
	}
	pending, err := provider.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("ledger: schema: %w", interpretError(err))
	}
	if pending {
		current, _ := provider.GetDBVersion(ctx)
		return fmt.Errorf("the database schema is at version %d, behind this returnsd: run 'returnsd migrate'", current)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(l.pool), nil)
	if err != nil {
		return fmt.Errorf("ledger: schema: %w", err)
	}
	res, err := migrator.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: job queue schema: %w", interpretError(err))
	}
	if !res.OK {
		return fmt.Errorf("the job queue's tables are behind this returnsd (%s): run 'returnsd migrate'", strings.Join(res.Messages, "; "))
	}
	return nil
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, files, goose.WithSessionLocker(locker))
}
