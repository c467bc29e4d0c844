package logs

import (
	"strings"
	"testing"
)

// literalLen is the length of a template with each `<*>` counted as one
// byte: masking and Drain only ever replace a span of at least one byte.
func literalLen(s string) int {
	return len(s) - 2*strings.Count(s, Param)
}

func FuzzMiner(f *testing.F) {
	for _, s := range []string{
		demoLine(1, true, "1.2.0", 3),
		demoLine(2, false, "1.2.0", 3),
		`{"level":"error","msg":"db failed","err":"dial tcp 10.0.0.1:5432"}`,
		`{"level":50,"msg":"a\u0020b\tc"}`,
		`2026/11/27 19:20:37 [ERROR] upstream 192.168.1.4:8080 timed out after 1.5s`,
		`E1127 19:20:37.123 1 main.go:42] can't open 'a b': 0xdeadbeef fe80::1`,
		`level=error msg="unterminated`,
		"level=info msg=\"\\\"\" err=\"x y\"",
		"<*> <*> \xff\xfe 1",
		"",
	} {
		f.Add(s, s+" 7")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		const maxBytes = 200
		m, err := NewMiner(Options{MaxLineBytes: maxBytes, MaxClusters: 4, Depth: 3, MaxChildren: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range []string{a, b, a, b + a} {
			ln := ParseLine(raw, maxBytes, nil)
			if len(ln.Raw) > maxBytes || !strings.HasPrefix(raw, ln.Raw) {
				t.Fatalf("Raw %q is not a prefix of %q within %d bytes", ln.Raw, raw, maxBytes)
			}
			if len(ln.Content) > len(ln.Raw) {
				t.Fatalf("content %q longer than line %q", ln.Content, ln.Raw)
			}
			masked := Mask(ln.Content)
			if literalLen(masked) > len(ln.Content) {
				t.Fatalf("Mask(%q) = %q is longer", ln.Content, masked)
			}
			tokens := strings.Fields(masked)
			got := m.Add(raw)
			if got.Level != ln.Level {
				t.Fatalf("Add level %v, ParseLine level %v", got.Level, ln.Level)
			}
			tt := strings.Fields(got.Template)
			if len(tt) != len(tokens) {
				t.Fatalf("template %q has %d tokens, line %q has %d", got.Template, len(tt), masked, len(tokens))
			}
			for i := range tt {
				if tt[i] != Param && tt[i] != tokens[i] {
					t.Fatalf("template %q token %d is neither <*> nor the line's %q", got.Template, i, tokens[i])
				}
			}
			if literalLen(got.Template) > len(ln.Raw) {
				t.Fatalf("template %q is longer than line %q", got.Template, ln.Raw)
			}
			if m.Len() > 4 {
				t.Fatalf("Len() = %d beyond the bound 4", m.Len())
			}
		}
		for _, tp := range m.Templates() {
			if tp.Count < 1 || tp.CountAtLeast(LevelUnknown) != tp.Count || len(tp.Examples) > DefaultMaxExamples {
				t.Fatalf("inconsistent template %+v", tp)
			}
		}
		other, _ := NewMiner(Options{MaxLineBytes: maxBytes})
		other.Add(b)
		for _, f := range Compare(other, m, CompareOptions{MinCount: 1}) {
			if f.CandidateCount < 1 || len(f.Examples) > 3 || f.Level < LevelError {
				t.Fatalf("inconsistent finding %+v", f)
			}
		}
	})
}
