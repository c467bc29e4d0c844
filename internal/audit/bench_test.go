package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// benchExport is a 1,000,000-entry export written once per test binary.
var benchExport struct {
	once sync.Once
	path string
	size int64
	err  error
}

const benchEntries = 1_000_000

func TestMain(m *testing.M) {
	code := m.Run()
	if benchExport.path != "" {
		os.RemoveAll(filepath.Dir(benchExport.path))
	}
	os.Exit(code)
}

func writeBenchExport(s *Signer) (string, int64, error) {
	benchExport.once.Do(func() {
		dir, err := os.MkdirTemp("", "airlock-audit-bench-")
		if err != nil {
			benchExport.err = err
			return
		}
		path := filepath.Join(dir, "export.jsonl")
		f, err := os.Create(path)
		if err != nil {
			benchExport.err = err
			return
		}
		defer f.Close()
		// Build the chain first to know the head for the checkpoint; keep
		// only what the checkpoints need, and stream the entries.
		var head string
		prev := GenesisHash
		var e Entry
		mk := func(i int) *Entry {
			e = Entry{
				Seq: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Millisecond), Actor: "ci-bot",
				Action: "update", Kind: "Release", Name: fmt.Sprintf("shop-1.%d.0", i%1000),
				Revision: int64(i + 1), StateHash: fmt.Sprintf("sha256:%064x", i),
			}
			if i%10 == 0 {
				e.Reason = "promote to prod"
			}
			e.Seal(prev)
			prev = e.Hash
			return &e
		}
		heads := map[int]string{}
		for i := range benchEntries {
			mk(i)
			if (i+1)%100_000 == 0 {
				heads[i+1] = e.Hash
			}
		}
		head = e.Hash
		var cps []Checkpoint
		for size := 100_000; size < benchEntries; size += 100_000 {
			cps = append(cps, s.Sign(int64(size), heads[size], t0))
		}
		cps = append(cps, s.Sign(benchEntries, head, t0))
		prev = GenesisHash
		benchExport.err = WriteExport(f, Header{KeyID: KeyID(s.PublicKey())}, cps, func(yield func(*Entry, error) bool) {
			for i := range benchEntries {
				if !yield(mk(i), nil) {
					return
				}
			}
		})
		if benchExport.err == nil {
			benchExport.err = f.Close()
		}
		fi, err := os.Stat(path)
		if err == nil {
			benchExport.size = fi.Size()
		}
		benchExport.path = path
	})
	return benchExport.path, benchExport.size, benchExport.err
}

// BenchmarkVerifyExport verifies a 1,000,000-entry export from a file.
// Run it with -benchtime 1x; the target is under 10 s on 2 cores.
func BenchmarkVerifyExport(b *testing.B) {
	s := testSigner(1)
	start := time.Now()
	path, size, err := writeBenchExport(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("export of %d entries, %d MB, ready in %v", benchEntries, size>>20, time.Since(start).Round(time.Millisecond))
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r, err := VerifyExport(f, s.PublicKey())
		f.Close()
		if err != nil || !r.OK() || r.Entries != benchEntries {
			b.Fatalf("report %q, err %v", r, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEntries, "ns/entry")
}
