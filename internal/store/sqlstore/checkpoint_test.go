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
