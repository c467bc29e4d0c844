package sqlstore

import (
	"context"
	"fmt"
	"testing"
)

func TestCatchUp(t *testing.T) {
	for _, c := range []struct {
		behind, limit int
		want          bool
	}{
		{0, 0, false},
		{16384, 0, false},
		{16385, 0, true},
		{10, 10, false},
		{11, 10, true},
	} {
		if got := catchUp(c.behind, c.limit); got != c.want {
			t.Errorf("catchUp(%d, %d) = %t, want %t", c.behind, c.limit, got, c.want)
		}
	}
}

func TestSplit(t *testing.T) {
	rows := func(n int) []any { return make([]any, 4*n) }
	for _, c := range []struct {
		n    int
		want bool
	}{{0, false}, {1, false}, {16, false}, {17, true}, {32, false}, {100, true}, {128, false}, {129, true}} {
		if got := split(rows(c.n), 4); got != c.want {
			t.Errorf("split(%d rows) = %t, want %t", c.n, got, c.want)
		}
	}
}

// TestNameFilterGrows adds more names than the filter was built for: it
// must grow by layers, never lose a name, keep false positives rare, and
// never need the database again (sync at its head reads nothing; with no
// store and no transaction to read from, a rebuild would panic).
func TestNameFilterGrows(t *testing.T) {
	f := newNameFilter()
	f.layers = []bloomLayer{newLayer(minFilterBits)} // room for 65,536 names
	f.seq = 7
	const n = 300000
	name := func(prefix string, i int) objKey { return objKey{"Release", fmt.Sprintf("%s-%d", prefix, i)} }
	for i := range n {
		f.add(name("shop", i))
		if i%50000 == 0 {
			if err := f.sync(context.Background(), nil, nil, 7); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(f.layers) != 3 {
		t.Errorf("%d layers for %d names, want 3 (65,536 + 131,072 + 262,144 names of room)", len(f.layers), n)
	}
	for i := range n {
		if f.absent(name("shop", i)) {
			t.Fatalf("%v reported absent after it was added", name("shop", i))
		}
	}
	maybe := 0
	for i := range 100000 {
		if !f.absent(name("other", i)) {
			maybe++
		}
	}
	if maybe > 1000 {
		t.Errorf("%d of 100,000 names never added reported maybe present, want under 1%%", maybe)
	}
	t.Logf("%d layers, %d false positives in 100,000", len(f.layers), maybe)
}
