package sqlstore

import "testing"

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
