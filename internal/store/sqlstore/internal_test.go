package sqlstore

import (
	"context"
	"fmt"
	"reflect"
	"strings"
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

// TestColumns checks the rows-to-arrays turn of the combined statement:
// each column has its type, in row order, empty ones too.
func TestColumns(t *testing.T) {
	got := columns([]any{"a", int64(1), "b", int64(2), "c", int64(3)}, "si")
	want := []any{[]string{"a", "b", "c"}, []int64{1, 2, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns = %#v, want %#v", got, want)
	}
	got = columns(nil, entryTypes)
	if len(got) != 11 {
		t.Fatalf("%d columns of no rows, want 11", len(got))
	}
	if c, ok := got[0].([]int64); !ok || len(c) != 0 {
		t.Errorf("seq column of no rows is %#v, want an empty []int64", got[0])
	}
	if c, ok := got[2].([]string); !ok || len(c) != 0 {
		t.Errorf("actor column of no rows is %#v, want an empty []string", got[2])
	}
}

// TestCombinedQueries checks the combined statement's shapes: only the
// parts with rows, their array parameters numbered in order, then the head.
func TestCombinedQueries(t *testing.T) {
	all := combinedQueries[1|2|4|headPart]
	for _, want := range []string{
		"p0 AS (INSERT INTO objects (kind, name, revision, created_at, updated_at, labels, spec, status) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[]))",
		"p1 AS (INSERT INTO object_labels (kind, name, key, value) SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::text[]))",
		"unnest($13::bigint[], $14::bigint[], $15::text[],",
		"h AS (UPDATE audit_head SET seq = $24::bigint, hash = $25::text WHERE id = 1) SELECT 1",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("statement with every part:\n%s\nlacks %s", all, want)
		}
	}
	record := combinedQueries[4|headPart] // an entry alone
	if strings.Contains(record, "objects") || strings.Contains(record, "object_labels") ||
		!strings.HasPrefix(record, "WITH p2 AS (INSERT INTO audit_entries") || !strings.Contains(record, "seq = $12::bigint, hash = $13::text") {
		t.Errorf("statement for entries alone: %s", record)
	}
	if q := combinedQueries[0]; q != "SELECT 1" {
		t.Errorf("statement for nothing: %s", q)
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
