package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/store/storetest"
)

// createN creates n Releases named prefix-0 … in one Write, each with a
// spec of about specBytes, so one transaction and one commit.
func createN(st store.Store, prefix string, n, specBytes int) error {
	pad := strings.Repeat("x", specBytes)
	return st.Write(context.Background(), store.Actor{Name: "ci"}, func(tx store.Tx) error {
		for i := range n {
			obj := storetest.Obj("Release", fmt.Sprintf("%s-%d", prefix, i), map[string]string{"app": "shop"},
				`{"application":"shop","notes":"`+pad+`"}`)
			if _, err := tx.Create(context.Background(), obj); err != nil {
				return err
			}
		}
		return nil
	})
}

// createMany is createN failing the test on an error.
func createMany(t testing.TB, st store.Store, prefix string, n, specBytes int) {
	t.Helper()
	if err := createN(st, prefix, n, specBytes); err != nil {
		t.Fatal(err)
	}
}

// openUncopied opens a store on a new file, without the checkpoints that
// would copy the WAL into the database, and returns it with the file's path.
func openUncopied(t *testing.T) (*sqlstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "airlock.db")
	st, err := Open(context.Background(), path, sqlstore.Options{CheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// TestWALVFSWritesACommitOnce checks that a commit's frames reach the WAL
// file in one write: SQLite asks for two writes a frame (its header, then
// its page), and the VFS gathers them.
func TestWALVFSWritesACommitOnce(t *testing.T) {
	st, path := openUncopied(t)
	createMany(t, st, "warm", 4, 100)

	wal := path + "-wal"
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	size0, writes0, calls0 := fi.Size(), walWrites.Load(), walCalls.Load()
	createMany(t, st, "batch", 20, 100)
	if fi, err = os.Stat(wal); err != nil {
		t.Fatal(err)
	}
	frames := (fi.Size() - size0) / (4096 + 24)
	writes, calls := walWrites.Load()-writes0, walCalls.Load()-calls0
	t.Logf("one commit of 20 creates: %d frames, %d writes asked, %d made", frames, writes, calls)
	if frames < 8 {
		t.Fatalf("the commit added %d frames to the WAL, want at least 8 (is the WAL growing?)", frames)
	}
	if writes < 2*frames {
		t.Errorf("SQLite asked for %d writes for %d frames, want two a frame (is the VFS in use?)", writes, frames)
	}
	if calls != 1 {
		t.Errorf("the commit reached the file in %d writes, want 1", calls)
	}
}

// TestWALVFSCopyRecovers copies the database and its WAL after commits of
// every size, some over a write's 124 KiB limit or the buffer's, and opens
// the copy with SQLite's own default VFS: recovery replays a WAL frame only
// if the checksums of every frame before it hold, so a write of the VFS
// that was lost, reordered or put at the wrong offset loses commits here.
func TestWALVFSCopyRecovers(t *testing.T) {
	st, path := openUncopied(t)
	want := 0
	for i, c := range []struct{ n, spec int }{{1, 600}, {3, 600}, {40, 600}, {2, 600}, {300, 600}, {7, 600}, {200, 3000}, {5, 600}, {1000, 18000}, {3, 600}} {
		calls := walCalls.Load()
		createMany(t, st, fmt.Sprintf("b%d", i), c.n, c.spec)
		want += c.n
		// 300 creates fill more than the 124 KiB of one write, 200 of 3 kB
		// more than the buffer, and 1,000 of 18 kB (18 MB) more than
		// SQLite's page cache: it spills pages into the WAL before the
		// commit and then writes again, in place, the frames of pages it
		// changes after that.
		calls = walCalls.Load() - calls
		t.Logf("%d creates of %d bytes: %d writes", c.n, c.spec, calls)
		if c.n >= 200 && calls < 2 {
			t.Fatalf("a commit of %d creates of %d bytes reached the WAL in %d write, want it split", c.n, c.spec, calls)
		}
	}
	// The commits must still be in the WAL, not copied into the database.
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() < 512<<10 {
		t.Fatalf("the WAL: %v, %v; want the commits in it (over 512 KiB)", fi, err)
	}
	db := OpenCopy(t, path)
	var objects, entries int
	if err := db.QueryRow("SELECT count(*) FROM objects WHERE kind = 'Release'").Scan(&objects); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT count(*) FROM audit_entries").Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if objects != want || entries != want {
		t.Fatalf("the copy holds %d Releases and %d audit entries, want %d of each", objects, entries, want)
	}
}

// BenchmarkCommit commits batches of 4 and of 32 creates, with this VFS and
// with SQLite's default, alternating between two stores a round of 50
// batches at a time so that both see the same machine:
//
//	go test -run x -bench Commit -benchtime 2000x ./internal/store/sqlite
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{4, 32} {
		b.Run(fmt.Sprintf("creates=%d", n), func(b *testing.B) {
			var stores [2]*sqlstore.Store
			for i, vfs := range []bool{false, true} {
				useWALVFS = vfs
				st, err := Open(context.Background(), filepath.Join(b.TempDir(), "airlock.db"), sqlstore.Options{})
				useWALVFS = true
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				stores[i] = st
			}
			var (
				spent [2]time.Duration
				runs  [2]int
			)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s := i / 50 % 2
				t0 := time.Now()
				createMany(b, stores[s], fmt.Sprintf("c%d", i), n, 100)
				spent[s] += time.Since(t0)
				runs[s]++
			}
			b.StopTimer()
			for s, name := range []string{"default", "airlock-wal"} {
				if runs[s] > 0 {
					b.ReportMetric(float64(spent[s].Microseconds())/float64(runs[s]), "µs/commit-"+name)
				}
			}
		})
	}
}

// OpenCopy copies the database at path and its WAL, as they are, to a new
// directory and opens the copy with SQLite's default VFS, which recovers
// the WAL's committed frames, checks every frame's checksum on the way,
// and fails the test unless PRAGMA integrity_check passes. Nothing may
// write to the database while it copies. (Exported for the tests of package
// sqlite_test.)
func OpenCopy(t testing.TB, path string) *sql.DB {
	t.Helper()
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(copyPath+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+copyPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the copy: %q, %v", check, err)
	}
	return db
}

// TestWALWriteFailureChangesNothing makes the write of a commit's frames
// fail, as a full disk would, where the VFS writes them: at the commit's
// sync. The write must fail, leave nothing of itself behind (object, label
// rows, audit entry, head), and the next write must succeed.
func TestWALWriteFailureChangesNothing(t *testing.T) {
	st, path := openUncopied(t)
	ctx := context.Background()
	createMany(t, st, "before", 3, 100)
	seqBefore, hashBefore, err := st.Audit().Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	failWALWrites.Store(true)
	err = st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
		_, err := tx.Create(ctx, storetest.Obj("Release", "lost", map[string]string{"app": "shop"}, `{"application":"shop"}`))
		return err
	})
	failWALWrites.Store(false)
	if err == nil {
		t.Fatal("a write whose frames could not be written succeeded")
	}
	t.Logf("the failed write: %v", err)
	if _, err := st.Get(ctx, "Release", "lost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get the failed write's release: %v, want not found", err)
	}
	var labels int
	if err := st.DB().QueryRowContext(ctx, "SELECT count(*) FROM object_labels WHERE name = 'lost'").Scan(&labels); err != nil || labels != 0 {
		t.Errorf("%d label rows of the failed write (%v), want 0", labels, err)
	}
	if seq, hash, err := st.Audit().Head(ctx); err != nil || seq != seqBefore || hash != hashBefore {
		t.Errorf("audit head %d %s (%v) after the failed write, want %d %s", seq, hash, err, seqBefore, hashBefore)
	}

	createMany(t, st, "after", 2, 100)
	if seq, _, err := st.Audit().Head(ctx); err != nil || seq != seqBefore+2 {
		t.Errorf("audit head at %d (%v) after two more creates, want %d", seq, err, seqBefore+2)
	}
	var objects, entries int
	db := OpenCopy(t, path)
	if err := db.QueryRow("SELECT count(*) FROM objects WHERE kind = 'Release'").Scan(&objects); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT count(*) FROM audit_entries").Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if objects != 5 || entries != 5 {
		t.Errorf("a copy of the files holds %d Releases and %d audit entries, want 5 of each", objects, entries)
	}
}

// TestMain lets the test binary run as the writing process of
// TestWALVFSTwoProcesses.
func TestMain(m *testing.M) {
	if path := os.Getenv("AIRLOCK_SQLITE_WRITER"); path != "" {
		if err := writeFromChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "writer process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childWrites is how many Releases the writing process creates, in
// transactions of 1 to 40.
const childWrites = 800

func writeFromChild(path string) error {
	st, err := Open(context.Background(), path, sqlstore.Options{CheckpointRestart: 256}) // the WAL starts over every 1 MiB
	if err != nil {
		return err
	}
	defer st.Close()
	for i := 0; i < childWrites; {
		n := min(1+i%40, childWrites-i)
		if err := createN(st, fmt.Sprintf("child%d", i), n, 900); err != nil {
			return err
		}
		i += n
	}
	return nil
}

// TestWALVFSTwoProcesses reads a database while another process writes it
// through the VFS, the WAL starting over every megabyte. A reader must
// never meet a frame still in the writer's buffer: it would read a page
// that is not there, and SQLite would report the database malformed. Every
// read must succeed and see the writes grow, each with its audit entry.
func TestWALVFSTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	st, err := Open(ctx, path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "AIRLOCK_SQLITE_WRITER="+path)
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()

	var reads, last int
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer process: %v\n%s", err, stderr.String())
			}
			running = false
		default:
		}
		objs, err := st.List(ctx, "Release", nil)
		if err != nil {
			t.Fatalf("list while the other process writes (after %d reads): %v", reads, err)
		}
		seq, _, err := st.Audit().Head(ctx)
		if err != nil {
			t.Fatalf("audit head while the other process writes: %v", err)
		}
		if len(objs) < last || seq < int64(len(objs)) {
			t.Fatalf("read %d: %d releases (%d before) and audit head %d; want no fewer than before, and an entry for each", reads, len(objs), last, seq)
		}
		if len(objs) > 0 {
			if _, err := st.Get(ctx, "Release", objs[len(objs)/2].Metadata.Name); err != nil {
				t.Fatalf("get a listed release: %v", err)
			}
		}
		last = len(objs)
		reads++
	}
	objs, err := st.List(ctx, "Release", nil)
	if err != nil || len(objs) != childWrites {
		t.Fatalf("after the writer ended: %d releases (%v), want %d", len(objs), err, childWrites)
	}
	t.Logf("%d reads while the other process wrote", reads)
}
