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
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/store/sqlstore"

	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver
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
		Notify:     "SELECT pg_notify('" + changesChannel + "', '')",
		// A batch's rows and head in one round trip.
		CombineWrites: true,
		Pipeline:      pipeline,
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
	lctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); listen(lctx, url, st) }()
	st.OnClose(func() { stop(); <-done })
	return st, nil
}

// pipeline sends stmts on c as one pgx batch: one round trip, the
// statements run in order until one fails (see sqlstore.Dialect.Pipeline).
func pipeline(ctx context.Context, c *sql.Conn, stmts []sqlstore.Piped) (failed int, err error) {
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("pipeline: connection is a %T, not pgx's", dc)
		}
		b := &pgx.Batch{}
		for _, st := range stmts {
			b.Queue(st.SQL, st.Args...)
		}
		br := sc.Conn().SendBatch(ctx, b)
		for i, st := range stmts {
			failed = i
			if st.Scan != nil {
				if err := br.QueryRow().Scan(st.Scan...); err != nil {
					br.Close()
					return err
				}
				continue
			}
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			if st.Tag != nil {
				*st.Tag = tag.String()
			}
		}
		failed = len(stmts)
		return br.Close()
	})
	return failed, err
}

// changesChannel is the LISTEN/NOTIFY channel a commit announces itself on.
const changesChannel = "airlock_changes"

// listen keeps a connection LISTENing on changesChannel and wakes st's
// watches at every notification, so a change committed through another
// replica is seen at once rather than at the next poll. It reconnects with
// backoff (up to 5 s) until ctx ends; meanwhile watches still poll.
func listen(ctx context.Context, url string, st *sqlstore.Store) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+changesChannel); err == nil {
				backoff = 100 * time.Millisecond
				st.Wake() // changes may have come while not listening
				for {
					if _, err = conn.WaitForNotification(ctx); err != nil {
						break
					}
					st.Wake()
				}
			}
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
