package resource

import (
	"regexp"
	"testing"
)

// The regular expressions the hand-written shape checks replace: the
// reference they must agree with on every string.
var (
	nameRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)
	labelKeyRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]*[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)
	labelValRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)?$`)
)

var shapeSeeds = []string{
	"", "a", "A", "0", "-", ".", "_", "/", "a-b", "a.b", "a_b", "-a", "a-", ".a", "a.", "_a", "a_",
	"shop-1", "Shop", "example.com/tier", "example.com/", "/tier", "a/b/c", "Example.com/tier",
	"ex-ample.com/Tier_1", "a..b", "é", "a\x00b", "a b", "a/b", "a//b", "1.4.2", "sha256:9f86",
}

// checkShapes fails t when a hand-written check disagrees with its regexp.
func checkShapes(t *testing.T, s string) {
	t.Helper()
	for _, c := range []struct {
		name string
		got  bool
		re   *regexp.Regexp
	}{
		{"isName", isName(s), nameRE},
		{"isLabelKey", isLabelKey(s), labelKeyRE},
		{"isLabelValue", isLabelValue(s), labelValRE},
	} {
		if want := c.re.MatchString(s); c.got != want {
			t.Errorf("%s(%q) = %t; the regexp %s says %t", c.name, s, c.got, c.re, want)
		}
	}
}

func TestShapesMatchTheirRegexps(t *testing.T) {
	alphabet := []byte("aZ0._-/é \x00")
	var gen func(prefix []byte, n int)
	gen = func(prefix []byte, n int) { // every string of up to 4 of those bytes
		checkShapes(t, string(prefix))
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 4)
	for _, s := range shapeSeeds {
		checkShapes(t, s)
	}
}

func FuzzShapes(f *testing.F) {
	for _, s := range shapeSeeds {
		f.Add(s)
	}
	f.Fuzz(checkShapes)
}

func BenchmarkValidateLabels(b *testing.B) {
	labels := map[string]string{"app": "shop", "example.com/tier": "web", "team": "payments"}
	for b.Loop() {
		if err := ValidateLabels(labels); err != nil {
			b.Fatal(err)
		}
	}
}
