// Package postgres opens airlock's object store on PostgreSQL through
// pgx (database/sql adapter). Several airlock replicas may share one
// database: writers serialise on the audit head row (SELECT ... FOR
// UPDATE) and migrations on an advisory lock.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/airlock-dev/airlock/internal/store/sqlstore"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_lock key that serialises migrations
// between processes ("airlock" as a number).
const migrationLock int64 = 0x6169726c6f636b

// Dialect returns the PostgreSQL dialect of the shared engine.
func Dialect() sqlstore.Dialect {
	sub, _ := fs.Sub(migrations, "migrations") // cannot fail: the directory is embedded
	return sqlstore.Dialect{
		Name:       "postgres",
		Numbered:   true,
		BigInt:     "bigint",
		Blob:       "bytea",
		LockHead:   "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
		Migrations: sub,
		LockMigrations: func(ctx context.Context, c *sql.Conn) (func(context.Context) error, error) {
			if _, err := c.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				_, err := c.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", migrationLock)
				return err
			}, nil
		},
	}
}

// Open connects to the database at url (postgres://...), applies
// migrations and returns the store. The caller must Close it.
func Open(ctx context.Context, url string, opts sqlstore.Options) (*sqlstore.Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	st, err := sqlstore.New(ctx, db, Dialect(), opts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return st, nil
}
