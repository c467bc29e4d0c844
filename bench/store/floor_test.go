package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
