package signals

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzEscapePromQL checks that an escaped value, put between double
// quotes, reads back as exactly one string literal holding the value
// (PromQL's double-quoted strings use Go's escapes), and that templates
// never panic.
func FuzzEscapePromQL(f *testing.F) {
	for _, s := range []string{"v1", `v2"} or vector(1)`, "a\\b\n\x00\xff", "ünï\u2028", `{{version}}`} {
		f.Add(s, `x{v="{{version}}"}`)
	}
	f.Fuzz(func(t *testing.T, value, src string) {
		lit := `"` + EscapePromQL(value) + `"`
		got, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s does not read back: %v", lit, err)
		}
		if want := strings.ToValidUTF8(value, "\uFFFD"); got != want {
			t.Fatalf("%s reads back as %q, want %q", lit, got, want)
		}
		tmpl, err := ParseTemplate(src)
		if err != nil {
			return
		}
		out := tmpl.Execute(Labels{App: value, Environment: value, Version: value}, EscapePromQL)
		if !strings.Contains(src, "{{") && out != src {
			t.Fatalf("a template without placeholders changed: %q -> %q", src, out)
		}
	})
}
