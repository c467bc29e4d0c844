package flag_test

import (
	"testing"

	"github.com/airlock-dev/airlock/internal/flag"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want flag.Version
		ok   bool
	}{
		{"1.2.3", flag.Version{Major: 1, Minor: 2, Patch: 3}, true},
		{"0.0.0", flag.Version{}, true},
		{"10.20.30-rc.1+build.5", flag.Version{Major: 10, Minor: 20, Patch: 30, Pre: "rc.1", Build: "build.5"}, true},
		{"1.0.0-alpha-beta", flag.Version{Major: 1, Pre: "alpha-beta"}, true},
		{"1.0.0+0001", flag.Version{Major: 1, Build: "0001"}, true},
		{"1.0.0-0a", flag.Version{Major: 1, Pre: "0a"}, true},
		{"18446744073709551615.0.0", flag.Version{Major: 1<<64 - 1}, true},
		{"18446744073709551616.0.0", flag.Version{}, false},
		{"v1.2.3", flag.Version{}, false},
		{"1.2", flag.Version{}, false},
		{"1.2.3.4", flag.Version{}, false},
		{"01.2.3", flag.Version{}, false},
		{"1.02.3", flag.Version{}, false},
		{"1.2.03", flag.Version{}, false},
		{"1.2.3-01", flag.Version{}, false},
		{"1.2.3-", flag.Version{}, false},
		{"1.2.3+", flag.Version{}, false},
		{"1.2.3-a..b", flag.Version{}, false},
		{"1.2.3-a.", flag.Version{}, false},
		{"1.2.3-a_b", flag.Version{}, false},
		{"1.2.3 ", flag.Version{}, false},
		{"", flag.Version{}, false},
		{"1..3", flag.Version{}, false},
		{"-1.2.3", flag.Version{}, false},
	}
	for _, tt := range tests {
		got, err := flag.ParseVersion(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseVersion(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && got != tt.want {
			t.Errorf("ParseVersion(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("ParseVersion(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestVersionCompare(t *testing.T) {
	t.Parallel()
	// semver.org's precedence example, in ascending order, then more.
	order := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0-0", "2.0.0-9", "2.0.0-10", "2.0.0-a", "2.0.0",
	}
	for i := range order {
		for j := range order {
			a, _ := flag.ParseVersion(order[i])
			b, _ := flag.ParseVersion(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := flag.ParseVersion("1.0.0+a")
	b, _ := flag.ParseVersion("1.0.0+b")
	if a.Compare(b) != 0 {
		t.Errorf("build metadata must not count")
	}
}
