package ledger

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the schema up to date. It is safe to run from several replicas at
// once: goose takes a session lock while it migrates.
func (l *Ledger) Migrate(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(l.pool)
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return fmt.Errorf("ledger: migrate: %w", err)
	}
	return nil
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
