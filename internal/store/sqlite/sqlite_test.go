package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/store/storetest"

	msqlite "modernc.org/sqlite"
)

func open(tb testing.TB) store.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "airlock.db"), sqlstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// openAt opens a store on a new file and returns it with the file's path.
func openAt(t *testing.T, opts sqlstore.Options) (*sqlstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "airlock.db")
	st, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// createRelease writes a Release of that name, failing the test if it
// cannot.
func createRelease(t *testing.T, st store.Store, name string) {
	t.Helper()
	storetest.Create(t, st, storetest.Obj("Release", name, map[string]string{"app": "shop"}, `{"application":"shop"}`))
}

func TestFileMode(t *testing.T) {
	st, path := openAt(t, sqlstore.Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}
	var mode string
	if err := st.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	// FULL syncs every commit: acknowledged writes are durable, and the WAL
	// VFS (walvfs.go) relies on it to write a commit's frames before any
	// other connection may read them.
	var sync int
	if err := st.DB().QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	var limit int64
	if err := st.DB().QueryRow("PRAGMA journal_size_limit").Scan(&limit); err != nil || limit <= 0 {
		t.Errorf("journal_size_limit = %d, %v; want a bound", limit, err)
	}
	if runtime.GOOS == "linux" && !msqlite.FdatasyncEnabled() {
		t.Error("commits sync with fsync; want fdatasync on Linux")
	}
}

// TestCheckpointsInTheBackground checks that the WAL is copied into the
// database without anyone asking (wal_autocheckpoint is off) and, on Linux,
// by a thread at the lowest CPU priority.
func TestCheckpointsInTheBackground(t *testing.T) {
	st, path := openAt(t, sqlstore.Options{})
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		createRelease(t, st, fmt.Sprintf("shop-%d", i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > before.Size() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes 5s after 200 writes: the WAL was not checkpointed", fi.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if runtime.GOOS != "linux" {
		return
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var nices []string
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		// Field 19 is the niceness; the command name before it may hold spaces.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 16 {
			nices = append(nices, fields[16])
			if fields[16] == "19" {
				return
			}
		}
	}
	t.Errorf("no thread at niceness 19 (the checkpointer's); niceness of the threads: %v", nices)
}

// TestCheckpointerWritesBack checks that the checkpointer starts the
// database file's write-back after its checkpoints, on a descriptor that
// stays open however often the collector runs (a closed one fails with
// EBADF, and its number may be SQLite's by then), and that Close releases
// that descriptor with SQLite's.
func TestCheckpointerWritesBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the write-back needs sync_file_range (Linux)")
	}
	st, path := openAt(t, sqlstore.Options{CheckpointEvery: 5 * time.Millisecond})
	waitFor := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			cs := st.CheckpointStats()
			if cs.WriteBackErr != nil {
				t.Fatalf("write-back %d failed: %v", cs.WriteBacks, cs.WriteBackErr)
			}
			if got := cs.WriteBacks; got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d write-backs 10s after the writes, want at least %d", cs.WriteBacks, n)
			}
			createRelease(t, st, fmt.Sprintf("wait-%d-%d", n, time.Now().UnixNano()))
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := range 50 {
		createRelease(t, st, fmt.Sprintf("shop-%d", i))
	}
	waitFor(3)
	for i := range 5 {
		runtime.GC()
		runtime.GC()
		before := st.CheckpointStats().WriteBacks
		createRelease(t, st, fmt.Sprintf("after-gc-%d", i))
		waitFor(before + 1)
	}
	if n := openDescriptors(t, path); n == 0 {
		t.Fatalf("no descriptor of %s open while the store is", path)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openDescriptors(t, path); n != 0 {
		t.Fatalf("%d descriptors of %s still open after Close", n, path)
	}
}

// TestCheckpointerIdles checks that the checkpointer leaves an idle store
// alone once it has copied everything, and starts again with the next
// write.
func TestCheckpointerIdles(t *testing.T) {
	st, _ := openAt(t, sqlstore.Options{CheckpointEvery: 2 * time.Millisecond})
	// settle waits until two checkpoints apart no longer differ: the
	// checkpointer has copied everything and is idling.
	settle := func() int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		prev := st.CheckpointStats().Checkpoints
		for {
			time.Sleep(50 * time.Millisecond) // 25 ticks
			n := st.CheckpointStats().Checkpoints
			if n == prev {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("the checkpointer still ran %d checkpoints in the last 50ms, 10s after the last write", n-prev)
			}
			prev = n
		}
	}
	createRelease(t, st, "first")
	idle := settle()
	if idle == 0 {
		t.Fatal("no checkpoint after a write")
	}
	time.Sleep(200 * time.Millisecond) // 100 ticks
	if n := st.CheckpointStats().Checkpoints; n != idle {
		t.Fatalf("%d checkpoints in 200ms with nothing written, want none", n-idle)
	}
	createRelease(t, st, "second")
	if n := settle(); n <= idle {
		t.Fatalf("no checkpoint after the second write (%d before it, %d after)", idle, n)
	}
}

// openDescriptors counts this process's descriptors of the file at path.
func openDescriptors(t *testing.T, path string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && target == path {
			n++
		}
	}
	return n
}

// TestTwoProcesses opens the same file twice, as two airlock processes
// would, and writes through both at once.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "airlock.db")
	stores := storetest.OpenConcurrently(t, 2, func() (store.Store, error) {
		return sqlite.Open(context.Background(), path, sqlstore.Options{})
	})
	storetest.SharedWriters(t, stores...)
}

func BenchmarkAppend(b *testing.B) { storetest.BenchAppend(b, open(b)) }

func BenchmarkList(b *testing.B) { storetest.BenchList(b, open(b)) }

// BenchmarkSustained offers 5,000 creates/s for 10 s (open loop); run it
// with -benchtime=1x.
func BenchmarkSustained(b *testing.B) { storetest.BenchSustained(b, open(b), 5000, 10*time.Second) }

// TestWALStartsOver keeps the writer busy without a pause, so that no
// checkpoint ever finds the WAL fully copied by itself, and checks that the
// WAL file still stays small: the writer makes it start over once it holds
// CheckpointRestart frames. Without that the file grows with every commit.
//
// The checkpointer, at the lowest CPU priority, is the one that notices
// first; on a saturated machine (CI under -race) it may not run for
// seconds, and the writer then notices the file growing by itself. The
// second case leaves the writer alone to do it.
func TestWALStartsOver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{
		{"checkpointer every 10ms", 10 * time.Millisecond},
		{"checkpointer never runs", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) { testWALStartsOver(t, tc.every) })
	}
}

func testWALStartsOver(t *testing.T, every time.Duration) {
	var batches atomic.Int64
	st, path := openAt(t, sqlstore.Options{
		CheckpointEvery:   every,
		CheckpointRestart: 64, // 256 KiB
		ObserveBatch:      func(int, time.Duration, time.Duration) { batches.Add(1) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg      sync.WaitGroup
		written atomic.Int64
	)
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				err := st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
					_, err := tx.Create(ctx, storetest.Obj("Release", fmt.Sprintf("shop-%d-%d", w, i), map[string]string{"app": "shop"}, `{"application":"shop","version":"`+strings.Repeat("9", 8000)+`"}`))
					return err
				})
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				written.Add(1)
			}
		})
	}
	// Each write puts its 8 KB object through the WAL: 4,000 writes are
	// 32 MB, nearly three times the bound below. The bound leaves room for
	// a saturated machine, where the checkpointer (niceness 19) may take a
	// while to notice that the writer interrupted it.
	const wantWrites = 4000
	var largest int64
	deadline := time.Now().Add(60 * time.Second)
	for written.Load() < wantWrites && time.Now().Before(deadline) {
		if fi, err := os.Stat(path + "-wal"); err == nil {
			largest = max(largest, fi.Size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if n := written.Load(); n < wantWrites {
		t.Fatalf("only %d writes in 60 s", n)
	}
	if largest > 12<<20 {
		t.Errorf("the WAL file grew to %d bytes while the writer never paused; want it to start over at 64 frames and stay under 12 MiB", largest)
	}
	objs, err := st.List(context.Background(), "Release", nil)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(objs)) != written.Load() {
		t.Errorf("%d releases listed, %d written", len(objs), written.Load())
	}
	t.Logf("%d batches, %d writes, WAL at most %d bytes", batches.Load(), written.Load(), largest)
	if every < time.Hour {
		return // the checkpointer may be writing the database file: no copy
	}
	// With nothing writing, a copy of the files must recover every write:
	// the WAL started over again and again, each time written from its
	// header on through the WAL VFS's buffer.
	var copied int64
	if err := sqlite.OpenCopy(t, path).QueryRow("SELECT count(*) FROM objects WHERE kind = 'Release'").Scan(&copied); err != nil {
		t.Fatal(err)
	}
	if copied != written.Load() {
		t.Errorf("a copy of the files holds %d releases, %d were written", copied, written.Load())
	}
}

// TestWALStartsOverAfterALongRead holds a read transaction open while
// writes go on, so that the WAL cannot start over and grows; once the read
// ends, the writer must make it start over, and SQLite cuts the file back
// to journal_size_limit (1.25 × CheckpointRestart frames).
func TestWALStartsOverAfterALongRead(t *testing.T) {
	ctx := context.Background()
	st, path := openAt(t, sqlstore.Options{
		CheckpointEvery:   time.Hour, // the writer alone keeps the WAL bounded
		CheckpointRestart: 64,
	})
	big := `{"application":"shop","version":"` + strings.Repeat("9", 8000) + `"}`
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			err := st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
				_, err := tx.Create(ctx, storetest.Obj("Release", fmt.Sprintf("shop-%d", i), nil, big))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	write(0, 50)

	// A read transaction: BEGIN DEFERRED by hand, since the pool's
	// transactions begin IMMEDIATE (the write lock).
	read, err := st.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	if _, err := read.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := read.QueryRowContext(ctx, "SELECT count(*) FROM objects").Scan(&n); err != nil || n != 50 {
		t.Fatalf("the read saw %d objects (%v), want 50", n, err)
	}
	write(50, 350)
	during := walSize()
	if during < 2<<20 {
		t.Fatalf("the WAL is %d bytes after 300 writes of 8 KB under an open read; want it to have grown (the read keeps it from starting over)", during)
	}
	if _, err := read.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	write(350, 450)
	limit := int64(64 * 4096 * 5 / 4)
	if after := walSize(); after > limit+256<<10 {
		t.Errorf("the WAL is %d bytes 100 writes after the read ended (%d during it); want it cut back to about %d", after, during, limit)
	}
	objs, err := st.List(ctx, "Release", nil)
	if err != nil || len(objs) != 450 {
		t.Fatalf("listed %d releases (%v), want 450", len(objs), err)
	}
}

// TestWriterRecoversFromALockedDatabase holds SQLite's write lock from
// another connection for longer than the busy timeout (10 s): the write
// queued meanwhile fails, naming the lock, and the next one succeeds once
// the lock is gone. The writer drops the connection its begin failed on
// and takes a new one.
func TestWriterRecoversFromALockedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 10 s busy timeout")
	}
	ctx := context.Background()
	st, path := openAt(t, sqlstore.Options{})
	create := func(name string) error {
		return st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
			_, err := tx.Create(ctx, storetest.Obj("Release", name, nil, `{"application":"shop","version":"1"}`))
			return err
		})
	}
	if err := create("before"); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err = create("during")
	if err == nil || !strings.Contains(err.Error(), "begin write transaction") {
		t.Errorf("a write while another connection held the lock for 10 s: %v; want it to fail beginning its transaction", err)
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	if err := create("after"); err != nil {
		t.Fatalf("a write once the lock was gone: %v", err)
	}
	objs, err := st.List(ctx, "Release", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Metadata.Name)
	}
	if strings.Join(names, ",") != "after,before" {
		t.Errorf("releases stored: %v; want after and before (the failed write stores nothing)", names)
	}
}
