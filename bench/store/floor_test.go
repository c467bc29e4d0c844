package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestFileLogChainsAndSyncsEveryRecord appends records from several
// goroutines and reads the file back: every record is there once, each
// line's hash chains to the line before it.
func TestFileLogChainsAndSyncsEveryRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor.log")
	var writes int
	var mu sync.Mutex
	l, err := openFileLog(path, 1<<20, func(n int, _, _ time.Duration) {
		mu.Lock()
		writes += n
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := l.Append(context.Background(), w*1000+i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != 1<<20 {
		t.Errorf("file is %d bytes, want the 1 MiB ring", len(data))
	}
	data = data[:bytes.IndexByte(data, 0)]
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 400 || writes != 400 {
		t.Fatalf("%d lines in the file, %d writes observed; want 400", len(lines), writes)
	}
	var prev [sha256.Size]byte
	seen := map[string]bool{}
	for i, line := range lines {
		cut := strings.LastIndexByte(line, ',')
		rec, hash := line[:cut], line[cut+1:]
		h := sha256.New()
		h.Write(prev[:])
		h.Write([]byte(rec))
		h.Sum(prev[:0])
		if hex.EncodeToString(prev[:]) != hash {
			t.Fatalf("line %d: hash %s does not chain to the line before it", i+1, hash)
		}
		if seen[rec] {
			t.Fatalf("line %d: record written twice: %s", i+1, rec)
		}
		seen[rec] = true
	}
}

// TestFileLogWrapsAround checks that the ring starts over at its beginning
// instead of growing the file.
func TestFileLogWrapsAround(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor.log")
	l, err := openFileLog(path, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // about 25 KB of records
		if err := l.Append(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 4096 {
		t.Errorf("file is %d bytes, want the 4096-byte ring", len(data))
	}
	if bytes.HasPrefix(data, []byte(`{"seq":0,`)) {
		t.Errorf("the ring still starts with the first record; it never wrapped")
	}
}

// TestPostgresLogChainsEveryRecord appends records from several goroutines
// to the PostgreSQL floor and reads the table back: every record is there
// once, and the hashes, in the order of the records' insertion, chain.
func TestPostgresLogChainsEveryRecord(t *testing.T) {
	url := pgtest.FreshDatabase(t)
	ctx := context.Background()
	var batches, writes int
	var mu sync.Mutex
	l, err := openPostgresLog(ctx, url, func(n int, _, _ time.Duration) {
		mu.Lock()
		batches++
		writes += n
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := postgresDurability(ctx, mustOpen(t, url)); err != nil || !strings.Contains(d, "synchronous_commit=") {
		t.Errorf("durability %q (%v) does not give synchronous_commit", d, err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := l.Append(ctx, w*1000+i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if writes != 400 || batches >= 400 {
		t.Errorf("%d writes in %d batches; want 400 writes, in fewer batches (group commit)", writes, batches)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT seq, rec, hash FROM floor_log ORDER BY ctid")
	if err != nil {
		t.Fatal(err)
	}
	var prev [sha256.Size]byte
	seen := map[int64]bool{}
	n := 0
	for rows.Next() {
		var (
			seq       int64
			rec, hash string
		)
		if err := rows.Scan(&seq, &rec, &hash); err != nil {
			t.Fatal(err)
		}
		n++
		h := sha256.New()
		h.Write(prev[:])
		h.Write([]byte(rec))
		h.Sum(prev[:0])
		if hex.EncodeToString(prev[:]) != hash {
			t.Fatalf("row %d (seq %d): hash does not chain to the row before it", n, seq)
		}
		if seen[seq] {
			t.Fatalf("seq %d stored twice", seq)
		}
		seen[seq] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 400 {
		t.Errorf("%d rows stored, want 400", n)
	}
}

// mustOpen opens the database at url for the test.
func mustOpen(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
