package evidence

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

func TestChangeset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		doc   string
		paths []string
	}{
		{"sorted, deduplicated, trimmed, blank lines ignored", "b.go\n\n  a.go \r\nb.go\n", []string{"a.go", "b.go"}},
		{"git-quoted path unquoted", `"caf\303\251.txt"` + "\n" + `"a\"b"` + "\n", []string{`a"b`, "café.txt"}},
		{"quoted non-UTF-8 path stays quoted", `"x\377.bin"` + "\n", []string{`"x\377.bin"`}},
		{"empty diff", "", []string{}},
		{"no trailing newline", "a.go", []string{"a.go"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := parseChangeset(strings.NewReader(tc.doc), Options{})
			if err != nil {
				t.Fatal(err)
			}
			tccFacts(t, rep, map[string]any{"changeset.paths": tc.paths, "changeset.count": float64(len(tc.paths)), "changeset.truncated": false})
			checkChangesetInvariants(t, rep)
		})
	}
}

func TestChangesetTruncated(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := maxChangesetKept + 4; i >= 0; i-- { // reverse order, one duplicate
		fmt.Fprintf(&b, "f%06d\n", i)
	}
	b.WriteString("f000000\n")
	rep, err := parseChangeset(strings.NewReader(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	paths := rep.Facts["changeset.paths"].([]string)
	if len(paths) != maxChangesetKept || paths[0] != "f000000" || paths[len(paths)-1] != fmt.Sprintf("f%06d", maxChangesetKept-1) {
		t.Errorf("kept %d paths, %s..%s", len(paths), paths[0], paths[len(paths)-1])
	}
	tccFacts(t, rep, map[string]any{"changeset.count": float64(maxChangesetKept + 5), "changeset.truncated": true})
	checkChangesetInvariants(t, rep)
}

func TestChangesetErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("d/", maxPathBytes/2) + "x"
	for _, tc := range []struct{ name, doc, want string }{
		{"NUL (-z output)", "a.go\x00b.go\x00", "git diff --name-only: line 1: NUL byte; send newline-separated output (without -z)"},
		{"quoted NUL", `"a\000b"` + "\n", "line 1: path holds a NUL byte"},
		{"name-status", "M\ta.go\n", "line 1: tab in a path; this looks like --name-status or --stat output"},
		{"path too long", "a.go\n" + long + "\n", fmt.Sprintf("line 2: path is %d bytes, over the 4096-byte limit", len(long))},
		{"line far too long", strings.Repeat("x", 2*maxChangesetLineBuf) + "\n", "line 1: path is over the 4096-byte limit"},
		{"raw non-UTF-8", "caf\xe9.txt\n", "line 1: path is not valid UTF-8"},
		{"too many paths", strings.Repeat("a\n", maxChangesetPaths+1), "git diff --name-only: more than 100000 paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseChangeset(strings.NewReader(tc.doc), Options{})
			tccFormatError(t, err, tc.want)
		})
	}
}

func FuzzChangeset(f *testing.F) {
	for _, s := range tccSeeds(f, Changeset, "*.txt") {
		f.Add(s)
	}
	f.Add([]byte(`"\303\251\t"` + "\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rep, err := parseChangeset(bytes.NewReader(doc), Options{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "git diff --name-only: ") {
				t.Fatalf("error %T %q is not a changeset FormatError", err, err)
			}
			return
		}
		checkChangesetInvariants(t, rep)
	})
}

func checkChangesetInvariants(t *testing.T, rep *Report) {
	t.Helper()
	paths, ok := rep.Facts["changeset.paths"].([]string)
	count, ok2 := rep.Facts["changeset.count"].(float64)
	truncated, ok3 := rep.Facts["changeset.truncated"].(bool)
	if !ok || !ok2 || !ok3 || paths == nil {
		t.Fatalf("facts %#v", rep.Facts)
	}
	if !sort.StringsAreSorted(paths) || len(paths) > maxChangesetKept || float64(len(paths)) > count || truncated != (float64(len(paths)) < count) {
		t.Fatalf("paths %d sorted=%v, count %v, truncated %v", len(paths), sort.StringsAreSorted(paths), count, truncated)
	}
	for i, p := range paths {
		if p == "" || len(p) > maxPathBytes || strings.ContainsRune(p, 0) || (i > 0 && paths[i-1] == p) {
			t.Fatalf("bad path %q", p)
		}
	}
}
