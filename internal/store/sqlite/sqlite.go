// Package sqlite opens airlock's object store on a SQLite file
// (modernc.org/sqlite, pure Go): WAL journal, synchronous=FULL so every
// acknowledged write is on disk, and one writer goroutine that commits
// queued writes together. Commits sync with fdatasync where the system has
// it, as SQLite's own Linux builds do, and write their WAL frames with one
// call through a VFS of the package's own (walvfs.go).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/store/sqlstore"

	"modernc.org/sqlite" // also registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect returns the SQLite dialect of the shared engine.
func Dialect() sqlstore.Dialect {
	sub, _ := fs.Sub(migrations, "migrations") // cannot fail: the directory is embedded
	return sqlstore.Dialect{
		Name:     "sqlite",
		BigInt:   "INTEGER",
		Blob:     "BLOB",
		LockHead: "SELECT seq, hash FROM audit_head WHERE id = 1", // BEGIN IMMEDIATE already holds the write lock
		// wal_autocheckpoint(0) takes checkpoints off the commit path; this
		// copies the WAL into the database in the background instead. Often
		// and so briefly: a checkpoint is pure Go and holds one of the
		// process's Ps while it copies, so the writer and the requests
		// share the others for that time (bench/README.md, "Durability").
		Checkpoint:      "PRAGMA wal_checkpoint(PASSIVE)",
		CheckpointEvery: 50 * time.Millisecond,
		// 256 MB of 4 KiB pages, about three seconds at 5,000 writes/s:
		// each start-over stalls the writer for its checkpoint's syncs
		// (1-3 ms on the CI machines with WriteBack), so not too often.
		CheckpointRestart: walRestartFrames,
		FinalCheckpoint:   "PRAGMA wal_checkpoint(TRUNCATE)",
		Migrations:        sub,
	}
}

// walRestartFrames is the WAL size, in frames, at which the writer makes
// the WAL start over (see sqlstore.Dialect.CheckpointRestart).
const walRestartFrames = 65536

// Open opens (creating with mode 0600 if needed) the database at path,
// applies migrations and returns the store. The caller must Close it.
func Open(ctx context.Context, path string, opts sqlstore.Options) (*sqlstore.Store, error) {
	// fdatasync writes the WAL's data and size like fsync but not its
	// timestamps, which on ext4 cost every commit a journal commit: the
	// same durability for about half the sync time on Linux. The switch is
	// process-wide; where fdatasync does not exist (macOS, Windows) the
	// library keeps fsync and this fails harmlessly.
	_, _ = sqlite.Fdatasync(true)
	// Where there is a write-back, the store keeps this descriptor for it
	// until the database is closed (see sqlstore.Dialect.WriteBack). It
	// must not be closed any earlier: closing any descriptor of a file
	// drops every POSIX lock the process holds on it, SQLite's included.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database file: %w", err)
	}
	if writeBack == nil {
		f.Close() // before SQLite opens the file: no lock to drop yet
		f = nil
	}
	closeFile := func() {
		if f != nil {
			f.Close()
		}
	}
	if err := registerWALVFS(); err != nil {
		closeFile()
		return nil, err
	}
	q := url.Values{}
	if useWALVFS {
		q.Set("vfs", walVFSName)
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "wal_autocheckpoint(0)")
	// A WAL that grew past this during a burst (or while a long read kept
	// it from starting over) is cut back to it when it starts over.
	restart := walRestartFrames
	if opts.CheckpointRestart > 0 {
		restart = opts.CheckpointRestart
	}
	q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", restart*4096*5/4))
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		closeFile()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxLifetime(0)
	// Two processes opening a new file at once race to switch it to WAL
	// and to migrate it; SQLite answers the loser SQLITE_BUSY at once
	// (the busy handler does not cover the journal mode change), so the
	// open is tried again for a while.
	var st *sqlstore.Store
	deadline := time.Now().Add(10 * time.Second)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		if err = db.PingContext(ctx); err == nil {
			d := Dialect()
			var pageSize int64
			if err = db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err == nil {
				d.WALFrames = walFrames(path+"-wal", pageSize)
				if f != nil {
					d.WriteBack = func() error { return writeBack(f) }
					d.Release = closeFile
				}
				st, err = sqlstore.New(ctx, db, d, opts)
			}
			if err == nil {
				return st, nil
			}
		}
		if !isBusy(err) || ctx.Err() != nil || time.Now().After(deadline) {
			db.Close()
			closeFile()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		time.Sleep(delay)
	}
}

// walFrames returns a function that reports how many frames the WAL file at
// path has room for: the file has a 32-byte header, and each frame a 24-byte
// header and a page.
func walFrames(path string, pageSize int64) func() int {
	return func() int {
		fi, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return int(max(fi.Size()-32, 0) / (pageSize + 24))
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}
