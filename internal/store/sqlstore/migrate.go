package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// migrate applies the dialect's migrations that schema_migrations does not
// yet record, each in its own transaction together with its record.
func migrate(ctx context.Context, db *sql.DB, d *Dialect, now int64) (err error) {
	if d.Migrations == nil {
		return fmt.Errorf("%s dialect has no migrations", d.Name)
	}
	names, err := fs.Glob(d.Migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)

	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	defer conn.Close()
	if d.LockMigrations != nil {
		unlock, err := d.LockMigrations(ctx, conn)
		if err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer func() {
			if uerr := unlock(context.WithoutCancel(ctx)); uerr != nil && err == nil {
				err = fmt.Errorf("unlock migrations: %w", uerr)
			}
		}()
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at "+d.BigInt+" NOT NULL)"); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, name := range names {
		if err := applyMigration(ctx, conn, d, name, now); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, d *Dialect, name string, now int64) error {
	version := strings.TrimSuffix(name, ".sql")
	body, err := fs.ReadFile(d.Migrations, name)
	if err != nil {
		return fmt.Errorf("read migration %s: %w", name, err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", version, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind("SELECT count(*) FROM schema_migrations WHERE version = ?"), version).Scan(&n); err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("%s migration %s: %w", d.Name, version, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"), version, now); err != nil {
		return fmt.Errorf("migration %s: record: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", version, err)
	}
	return nil
}
