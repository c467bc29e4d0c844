package logs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// demoLine is a line as internal/demoapp writes it.
func demoLine(id int, failed bool, version string, ms int) string {
	if failed {
		return fmt.Sprintf(`time=2026-11-27T19:20:%02d.%06dZ level=error msg="payment declined: id=%d" method=GET path=/ status=500 duration_ms=%d version=%q`,
			id%60, id*7919%1000000, id, ms, version)
	}
	return fmt.Sprintf(`time=2026-11-27T19:20:%02d.%06dZ level=info msg="request served" method=GET path=/ status=200 duration_ms=%d version=%q`,
		id%60, id*7919%1000000, ms, version)
}

func mustMiner(t testing.TB, o Options) *Miner {
	t.Helper()
	m, err := NewMiner(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func templateStrings(m *Miner) []string {
	var out []string
	for _, tp := range m.Templates() {
		out = append(out, fmt.Sprintf("%d %s %s", tp.Count, tp.Level, tp.Template))
	}
	return out
}

func TestMinerTemplates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		want  []string // "count level template", most frequent first
	}{
		{
			name:  "demo service",
			lines: []string{demoLine(1, false, "1.2.0", 3), demoLine(2, true, "1.2.0", 4), demoLine(3, false, "1.2.0", 12), demoLine(4, true, "1.2.0", 0), demoLine(5, false, "1.2.0", 1)},
			want:  []string{"3 info request served", "2 error payment declined: id=<*>"},
		},
		{
			name:  "Drain merges differing words",
			lines: []string{"level=info msg=\"login accepted for alice\"", "level=info msg=\"login accepted for bob\"", "level=info msg=\"login accepted for carol\""},
			want:  []string{"3 info login accepted for <*>"},
		},
		{
			name:  "leading tokens route to separate leaves (Drain depth 4)",
			lines: []string{"user alice logged in", "user bob logged in"},
			want:  []string{"1 unknown user alice logged in", "1 unknown user bob logged in"},
		},
		{
			name:  "below the similarity threshold a new template starts",
			lines: []string{"connection reset by peer", "disk quota exceeded now"},
			want:  []string{"1 unknown connection reset by peer", "1 unknown disk quota exceeded now"},
		},
		{
			name:  "token count separates templates",
			lines: []string{"cache miss key", "cache miss key again"},
			want:  []string{"1 unknown cache miss key", "1 unknown cache miss key again"},
		},
		{
			name: "highest level wins",
			lines: []string{`level=warn msg="retrying call to 10.0.0.2:80"`, `level=error msg="retrying call to 10.0.0.3:80"`,
				`level=info msg="retrying call to 10.0.0.4:80"`},
			want: []string{"3 error retrying call to <*>"},
		},
		{
			name:  "empty content",
			lines: []string{"", "   ", "level=info msg=\"\""},
			want:  []string{"3 info "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := mustMiner(t, Options{})
			for _, l := range tt.lines {
				m.Add(l)
			}
			if got := templateStrings(m); !slices.Equal(got, tt.want) {
				t.Errorf("templates:\n got %q\nwant %q", got, tt.want)
			}
			if m.Lines() != len(tt.lines) {
				t.Errorf("Lines() = %d, want %d", m.Lines(), len(tt.lines))
			}
		})
	}
}

func TestMinerAddReportsTemplate(t *testing.T) {
	t.Parallel()
	m := mustMiner(t, Options{})
	a := m.Add(demoLine(1, true, "1.2.0", 3))
	b := m.Add(demoLine(2, true, "1.3.0", 9))
	if !a.Created || b.Created || a.ID != b.ID || b.ID != 1 {
		t.Errorf("Add = %+v then %+v, want one created template with id 1", a, b)
	}
	if b.Template != "payment declined: id=<*>" || b.Level != LevelError {
		t.Errorf("second Add = %+v, want template `payment declined: id=<*>` at error", b)
	}
	tp := m.Templates()[0]
	if len(tp.Examples) != 2 || tp.Examples[0] != demoLine(1, true, "1.2.0", 3) {
		t.Errorf("examples = %q, want the two lines", tp.Examples)
	}
}

func TestMinerExamplesFollowHighestLevel(t *testing.T) {
	t.Parallel()
	m := mustMiner(t, Options{MaxExamples: 2})
	for i := range 5 {
		m.Add(fmt.Sprintf("level=info msg=\"job %d done\"", i))
	}
	m.Add(`level=error msg="job 99 done"`)
	m.Add(`level=info msg="job 100 done"`)
	tp := m.Templates()[0]
	if want := []string{`level=error msg="job 99 done"`}; !slices.Equal(tp.Examples, want) {
		t.Errorf("examples = %q, want %q", tp.Examples, want)
	}
	if tp.CountAtLeast(LevelError) != 1 || tp.Count != 7 || tp.Levels[LevelInfo] != 6 {
		t.Errorf("counts = %d at error, %d total, levels %v", tp.CountAtLeast(LevelError), tp.Count, tp.Levels)
	}
}

func TestMinerMemoryBound(t *testing.T) {
	t.Parallel()
	const maxClusters = 50
	o := Options{MaxClusters: maxClusters}
	m := mustMiner(t, o)
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, 3+rng.IntN(6))
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		return string(b)
	}
	const keep = "level=error msg=\"kept alive because it recurs\""
	m.Add(keep)
	keptID := m.Add(keep).ID
	const n = 20000
	for i := range n {
		var ws []string
		for range 1 + rng.IntN(8) {
			ws = append(ws, word())
		}
		m.Add(strings.Join(ws, " "))
		if i%10 == 0 {
			m.Add(keep)
		}
		if m.Len() > maxClusters {
			t.Fatalf("after %d lines Len() = %d, want at most %d", i, m.Len(), maxClusters)
		}
		if lim := 1 + maxClusters*(m.opts.Depth-1); m.nodes > lim {
			t.Fatalf("after %d lines the tree has %d nodes, want at most %d", i, m.nodes, lim)
		}
		if i%4000 == 0 {
			if got := countNodes(m.root); got != m.nodes {
				t.Fatalf("node count %d, tree holds %d", m.nodes, got)
			}
		}
	}
	if m.Evicted() == 0 || m.Evicted()+m.Len() != m.nextID-1 {
		t.Errorf("Evicted() = %d, Len() = %d, created %d", m.Evicted(), m.Len(), m.nextID-1)
	}
	found := false
	for _, tp := range m.Templates() {
		found = found || tp.ID == keptID
		if tp.ID == keptID && tp.Count != 2+n/10 {
			t.Errorf("recurring template counted %d, want %d", tp.Count, 2+n/10)
		}
	}
	if !found {
		t.Errorf("the recently used template %d was evicted", keptID)
	}
	if got := countNodes(m.root); got != m.nodes {
		t.Errorf("node count %d, tree holds %d", m.nodes, got)
	}
}

func countNodes(n *node) int {
	c := 1
	for _, ch := range n.children {
		c += countNodes(ch)
		if len(ch.children) > 0 && len(ch.clusters) > 0 {
			panic("a node with both children and clusters")
		}
	}
	return c
}

func TestMinerMaxChildren(t *testing.T) {
	t.Parallel()
	m := mustMiner(t, Options{MaxChildren: 3, MaxClusters: 1000})
	// Every token differs from line to line, so no line joins a template
	// and each one walks the tree to create its own.
	w := func(prefix byte, i int) string { return string([]byte{prefix, 'a' + byte(i%26), 'a' + byte(i/26)}) }
	for i := range 100 {
		m.Add(w('p', i) + " " + w('q', i) + " " + w('r', i) + " " + w('s', i))
	}
	if m.Len() != 100 {
		t.Fatalf("Len() = %d, want 100 distinct templates", m.Len())
	}
	var walk func(n *node)
	walk = func(n *node) {
		if n != m.root && len(n.children) > 3 {
			t.Errorf("node %q has %d children, want at most 3", n.key, len(n.children))
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(m.root)
}

func TestMinerMaxLineBytes(t *testing.T) {
	t.Parallel()
	m := mustMiner(t, Options{MaxLineBytes: 64})
	long := `level=error msg="` + strings.Repeat("overflow ", 50) + `"`
	got := m.Add(long)
	if got.Level != LevelError {
		t.Errorf("a cut logfmt line falls back to plain text and keeps its level; got %v", got.Level)
	}
	tp := m.Templates()[0]
	if len(tp.Template) > 64 || len(tp.Examples[0]) > 64 {
		t.Errorf("template %d bytes, example %d bytes; want at most 64", len(tp.Template), len(tp.Examples[0]))
	}
}

func TestNewMinerRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{Depth: 2}, {SimThreshold: 1.5}, {SimThreshold: -0.1}, {MaxChildren: 1}, {MaxClusters: -1}, {MaxLineBytes: -5},
	} {
		if _, err := NewMiner(o); !errors.Is(err, ErrOptions) {
			t.Errorf("NewMiner(%+v) error = %v, want ErrOptions", o, err)
		}
	}
	m := mustMiner(t, Options{ExtraKeys: []string{"msg", "err", "err", ""}})
	if got := m.Options().ExtraKeys; !slices.Equal(got, []string{"err"}) {
		t.Errorf("ExtraKeys = %q, want [err]", got)
	}
}
