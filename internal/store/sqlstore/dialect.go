// Package sqlstore is the revisioned object store engine shared by the
// SQLite and PostgreSQL implementations. It speaks database/sql; a small
// Dialect supplies what differs between the two databases: placeholders,
// column types, the statement that locks the audit head, the migrations and
// how migrations are serialised between processes.
package sqlstore

import (
	"context"
	"database/sql"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Dialect describes one database to the engine.
type Dialect struct {
	// Name is a short name for messages ("sqlite", "postgres").
	Name string
	// Numbered is true when placeholders are $1, $2, ... instead of ?.
	Numbered bool
	// BigInt and Blob are the column types the engine uses for the tables
	// it creates itself (schema_migrations).
	BigInt, Blob string
	// LockHead reads the single audit_head row (seq, hash) and holds it
	// until the transaction ends, so that writers from every process
	// serialise on it.
	LockHead string
	// Migrations holds the schema as *.sql files, applied in name order and
	// recorded in schema_migrations.
	Migrations fs.FS
	// LockMigrations, when set, takes a lock that keeps other processes from
	// migrating at the same time, on the connection the migrations then run
	// on. It returns the function that releases the lock. When nil the
	// migration transaction itself is assumed to serialise (SQLite's BEGIN
	// IMMEDIATE).
	LockMigrations func(ctx context.Context, c *sql.Conn) (unlock func(context.Context) error, err error)
	// Checkpoint, when set, is a statement run every CheckpointEvery on a
	// pool connection, off the writer's path (SQLite: a PASSIVE WAL
	// checkpoint, so commits never pay for copying the WAL into the
	// database), and once more on Close. Its result row is SQLite's:
	// busy, frames in the WAL, frames copied. It runs at a low CPU
	// priority while it keeps up, and at normal priority once more than
	// CheckpointCatchUp frames (default 16,384) are left uncopied. A tick
	// with nothing committed since a checkpoint that copied everything is
	// skipped.
	//
	// SQLite starts the WAL over from its beginning only when a write
	// finds every frame already copied, which under steady writes never
	// happens: the checkpoint copies what was there when it began, and
	// the writer has committed more by the time it ends. The WAL would
	// grow without bound (60 MB/s at 5,000 writes/s), and every commit
	// would extend the file, which costs ext4 a journal commit in each
	// fdatasync. So once a checkpoint reports at least CheckpointRestart
	// frames in the WAL, the writer runs the checkpoint itself between two
	// batches: with no write in progress it copies the last frames, and
	// the next write starts the WAL over, overwriting blocks the file
	// already has.
	//
	// The checkpointer runs at the lowest CPU priority, so on a saturated
	// machine it may not run for seconds. WALFrames, when set, lets the
	// writer see for itself: it returns how many frames the WAL file has
	// room for (its size over the frame size). Should the file grow past
	// CheckpointRestart frames (and an eighth more, the checkpointer's
	// turn), the log holds at least that many, and the writer makes it
	// start over as above without waiting to be told.
	//
	// A checkpoint that leaves frames uncopied writes pages into the
	// database file but does not sync it (the WAL still holds them); only
	// a complete one, such as the writer's before a start-over, syncs the
	// file, and that sync then writes out everything the checkpoints
	// before it left in the page cache: 3-28 ms at 5,000 writes/s on the
	// CI machines, with the writer waiting. WriteBack, when set, runs on
	// the checkpointer's thread after each checkpoint that copied frames
	// and starts writing the database file's dirty pages to disk without
	// waiting for them, so that sync finds little left to write (1-3 ms).
	// It changes nothing about what is durable. Release, when set, runs
	// on Close once the database is closed, to free what WriteBack holds.
	Checkpoint        string
	CheckpointEvery   time.Duration
	CheckpointCatchUp int
	CheckpointRestart int
	WALFrames         func() int
	WriteBack         func() error
	Release           func()
	// FinalCheckpoint runs on Close instead of Checkpoint when set.
	FinalCheckpoint string
	// Notify, when set, tells other processes sharing the database that
	// the audit log grew (PostgreSQL: pg_notify). Their stores call Wake
	// when it arrives, so their watches read at once instead of at their
	// next poll. A notification is only a hint to read the log again, so
	// it is not part of any write: a goroutine of its own sends it on a
	// pool connection after commits that appended entries, at most once
	// every NotifyEvery (default 5 ms), one for all the commits since the
	// last. A notification that fails (PostgreSQL refuses them while its
	// notification queue is full) thus fails no write; the other
	// processes' watches find the entries at their next poll.
	Notify      string
	NotifyEvery time.Duration
	// CombineWrites, when set, writes a batch's rows of every table and
	// the audit head in one statement of data-modifying WITH parts, each
	// table's rows as arrays to unnest (PostgreSQL), instead of a
	// multi-row statement each per 128 rows: fewer round trips to a
	// server, one statement to plan whatever the batch's size, nothing
	// gained in-process (SQLite, which has neither INSERT in WITH nor
	// arrays).
	CombineWrites bool
	// Pipeline, when set, sends stmts to the server on c together and then
	// reads their results (PostgreSQL: a pgx batch): one round trip for
	// all. The first statement that fails ends it: Pipeline returns its
	// index and error, and the ones after it are not run. With it the
	// writer keeps a connection of its own, begins each batch's
	// transaction together with locking the audit head, and commits
	// together with the batch's last statement: two round trips a batch
	// instead of four.
	Pipeline func(ctx context.Context, c *sql.Conn, stmts []Piped) (failed int, err error)
}

// Piped is one statement of a Dialect.Pipeline.
type Piped struct {
	SQL  string
	Args []any
	// Scan, when set, receives the statement's one row.
	Scan []any
	// Tag, when set, receives the statement's command tag ("COMMIT", or
	// "ROLLBACK" when PostgreSQL committed nothing).
	Tag *string
}

// rebind rewrites a query written with ? placeholders for the dialect.
func (d *Dialect) rebind(q string) string {
	if !d.Numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
