package evidence

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCoverprofile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		doc   string
		facts map[string]any
	}{
		{
			name:  "statements, not blocks",
			doc:   "mode: count\na/x.go:1.1,2.2 3 5\na/x.go:3.1,4.2 1 0\nb/y.go:1.1,1.9 2 0\n",
			facts: map[string]any{"coverage.lines_total": 6.0, "coverage.lines_covered": 3.0, "coverage.line_percent": 50.0, "coverage.files": 2.0},
		},
		{
			name:  "merged: a repeated block counts once, covered if any run covered it",
			doc:   "mode: set\nx.go:1.1,2.2 2 0\nx.go:3.1,4.2 1 1\nmode: set\nx.go:1.1,2.2 2 1\nx.go:3.1,4.2 1 0\n",
			facts: map[string]any{"coverage.lines_total": 3.0, "coverage.lines_covered": 3.0, "coverage.line_percent": 100.0, "coverage.files": 1.0},
		},
		{
			name:  "rounded to 2 decimals",
			doc:   "mode: atomic\nx.go:1.1,2.2 1 1\nx.go:3.1,4.2 2 0\n",
			facts: map[string]any{"coverage.line_percent": 33.33},
		},
		{
			name:  "file names with spaces and colons, CRLF",
			doc:   "mode: set\r\nC:/a b/x.go:1.1,2.2 1 1\r\n",
			facts: map[string]any{"coverage.lines_total": 1.0, "coverage.files": 1.0},
		},
		{
			name:  "no blocks is 0%",
			doc:   "mode: set\n",
			facts: map[string]any{"coverage.line_percent": 0.0, "coverage.lines_total": 0.0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := parseCoverprofile(strings.NewReader(tc.doc), Options{})
			if err != nil {
				t.Fatal(err)
			}
			tccFacts(t, rep, tc.facts)
			checkCoverageInvariants(t, rep)
			if _, ok := rep.Facts["coverage.branch_percent"]; ok {
				t.Error("a coverprofile has no branch coverage")
			}
		})
	}
}

func TestCoverprofileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"no mode line", "x.go:1.1,2.2 1 1\n", `Go coverprofile: line 1: first line must be "mode: set|count|atomic"`},
		{"empty", "", `Go coverprofile: no "mode:" line`},
		{"bad mode", "mode: sometimes\n", `Go coverprofile: line 1: mode "sometimes", want set, count or atomic`},
		{"mixed modes", "mode: set\nx.go:1.1,2.2 1 1\nmode: count\n", `line 3: mode "count" contradicts the earlier mode "set"`},
		{"inconsistent statements", "mode: set\nx.go:1.1,2.2 1 1\nx.go:1.1,2.2 2 1\n", "line 3: block x.go:1.1,2.2 has 2 statements here and 1 before"},
		{"missing count", "mode: set\nx.go:1.1,2.2 1\n", `line 2: want "file:line.col,line.col statements count"`},
		{"negative count", "mode: set\nx.go:1.1,2.2 1 -1\n", "line 2: count is not a non-negative integer"},
		{"bad position", "mode: set\nx.go:1.1-2.2 1 1\n", "line 2: block position is not line.col,line.col"},
		{"no file", "mode: set\n:1.1,2.2 1 1\n", "line 2: block has no file name"},
		{"one field", "mode: set\ngarbage\n", `line 2: want "file:line.col,line.col statements count"`},
		{"line too long", "mode: set\n" + strings.Repeat("x", maxCoverprofileLine+1), "line 2: longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseCoverprofile(strings.NewReader(tc.doc), Options{})
			tccFormatError(t, err, tc.want)
		})
	}
}

func TestCobertura(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		doc    string
		facts  map[string]any
		absent []string
	}{
		{
			name:  "counts win over rates",
			doc:   `<coverage line-rate="0.1" branch-rate="0.1" lines-valid="3" lines-covered="2" branches-valid="4" branches-covered="1"/>`,
			facts: map[string]any{"coverage.line_percent": 66.67, "coverage.branch_percent": 25.0, "coverage.lines_total": 3.0},
		},
		{
			name:   "branches-valid 0 means branches were not measured",
			doc:    `<coverage line-rate="1" branch-rate="0" lines-valid="1" lines-covered="1" branches-valid="0" branches-covered="0"/>`,
			facts:  map[string]any{"coverage.line_percent": 100.0},
			absent: []string{"coverage.branch_percent"},
		},
		{
			name: "no counts: class lines counted, method lines not, files distinct",
			doc: `<coverage line-rate="0.5" branch-rate="0.5"><packages><package><classes>
				<class filename="a.py"><methods><method><lines><line number="1" hits="1"/></lines></method></methods>
					<lines><line number="1" hits="1"/><line number="2" hits="0"/></lines></class>
				<class filename="a.py"><lines><line number="9" hits="3"/></lines></class>
				<class filename="b.py"><lines/></class></classes></package></packages></coverage>`,
			facts: map[string]any{"coverage.lines_total": 3.0, "coverage.lines_covered": 2.0, "coverage.line_percent": 66.67,
				"coverage.branch_percent": 50.0, "coverage.files": 2.0},
		},
		{
			name:  "summary only: the line rate",
			doc:   `<coverage line-rate="0.8123"/>`,
			facts: map[string]any{"coverage.line_percent": 81.23, "coverage.lines_total": 0.0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := parseCobertura(strings.NewReader(tc.doc), Options{})
			if err != nil {
				t.Fatal(err)
			}
			tccFacts(t, rep, tc.facts)
			for _, k := range tc.absent {
				if v, ok := rep.Facts[k]; ok {
					t.Errorf("%s = %v, want absent", k, v)
				}
			}
			checkCoverageInvariants(t, rep)
		})
	}
}

func TestCoberturaErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"wrong root", `<testsuites/>`, "Cobertura XML: line 1: root element is <testsuites>, want <coverage>"},
		{"truncated", "<coverage>\n<packages>", "Cobertura XML: line 2: malformed XML: unexpected EOF"},
		{"rate over 1", `<coverage line-rate="1.5"/>`, `Cobertura XML: line 1: <coverage> line-rate="1.5", want a rate from 0 to 1`},
		{"covered over valid", `<coverage lines-valid="2" lines-covered="3"/>`, "lines-covered 3 is greater than lines-valid 2"},
		{"bad count", `<coverage lines-valid="many" lines-covered="3"/>`, `lines-valid="many", want a count`},
		{"missing covered", `<coverage lines-valid="3"/>`, `lines-covered="", want a count`},
		{"bad hits", `<coverage><packages><package><classes><class><lines><line hits="x"/></lines></class></classes></package></packages></coverage>`, `<line> hits="x", want a count`},
		{"empty", ``, "Cobertura XML: no root element"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseCobertura(strings.NewReader(tc.doc), Options{})
			tccFormatError(t, err, tc.want)
		})
	}
}

func TestLCOV(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		doc    string
		facts  map[string]any
		absent []string
	}{
		{
			name: "summaries summed over records",
			doc: "TN:\nSF:a.js\nFNF:2\nFNH:1\nDA:1,1\nLF:10\nLH:5\nBRF:4\nBRH:1\nend_of_record\n" +
				"TN:\nSF:b.js\nFNF:2\nFNH:2\nLF:10\nLH:10\nBRF:0\nBRH:0\nend_of_record\n",
			facts: map[string]any{"coverage.lines_total": 20.0, "coverage.lines_covered": 15.0, "coverage.line_percent": 75.0,
				"coverage.branch_percent": 25.0, "coverage.function_percent": 75.0, "coverage.files": 2.0},
		},
		{
			name:   "no LF/LH: counted from DA; no branches: branch_percent unknown",
			doc:    "VER:2.0\nSF:c.c\nDA:1,0\nDA:2,7,abc\nDA:3,1e+06\nend_of_record\n",
			facts:  map[string]any{"coverage.lines_total": 3.0, "coverage.lines_covered": 2.0, "coverage.line_percent": 66.67},
			absent: []string{"coverage.branch_percent", "coverage.function_percent"},
		},
		{
			name:  "unknown keys of newer tools are ignored",
			doc:   "SF:a.js\nFNL:0,1,3\nFNA:0,1,f\nXYZ:whatever\nLF:1\nLH:1\nend_of_record\n",
			facts: map[string]any{"coverage.line_percent": 100.0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := parseLCOV(strings.NewReader(tc.doc), Options{})
			if err != nil {
				t.Fatal(err)
			}
			tccFacts(t, rep, tc.facts)
			for _, k := range tc.absent {
				if v, ok := rep.Facts[k]; ok {
					t.Errorf("%s = %v, want absent", k, v)
				}
			}
			checkCoverageInvariants(t, rep)
		})
	}
}

func TestLCOVErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"LH over LF", "SF:a.js\nLF:2\nLH:3\nend_of_record\n", "LCOV: record for a.js (line 1): LH 3 is greater than LF 2"},
		{"BRH over BRF", "SF:a.js\nBRF:0\nBRH:1\nend_of_record\n", "BRH 1 is greater than BRF 0"},
		{"LH without LF", "SF:a.js\nLH:3\nend_of_record\n", "LH without LF"},
		{"truncated", "SF:a.js\nDA:1,1\nLF:1\n", "LCOV: record for a.js (line 1) has no end_of_record; truncated?"},
		{"data before SF", "TN:\nDA:1,1\n", "LCOV: line 2: DA outside an SF record"},
		{"nested SF", "SF:a.js\nSF:b.js\n", "LCOV: line 2: SF before the end_of_record of a.js (line 1)"},
		{"stray end", "end_of_record\n", "LCOV: line 1: end_of_record without an SF record"},
		{"not KEY:value", "SF:a.js\nhello\n", `LCOV: line 2: "hello" is not an LCOV KEY:value line`},
		{"bad count", "SF:a.js\nLF:ten\n", `LCOV: line 2: LF "ten", want a non-negative count`},
		{"huge count", "SF:a.js\nLF:99999999999999999\n", `LF "99999999999999999", want a non-negative count`},
		{"bad DA", "SF:a.js\nDA:x,1\n", `LCOV: line 2: DA "x,1", want <line>,<count>`},
		{"empty SF", "SF:\n", "LCOV: line 1: SF with no file name"},
		{"empty", "\n\n", "LCOV: document is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseLCOV(strings.NewReader(tc.doc), Options{})
			tccFormatError(t, err, tc.want)
		})
	}
}

func fuzzCoverage(f *testing.F, glob, prefix string, parse Parser) {
	for _, s := range tccSeeds(f, Coverage, glob) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		rep, err := parse(bytes.NewReader(doc), Options{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("error %T %q is not a %s FormatError", err, err, prefix)
			}
			return
		}
		checkCoverageInvariants(t, rep)
	})
}

func FuzzCoverprofile(f *testing.F) { fuzzCoverage(f, "*.out", "Go coverprofile: ", parseCoverprofile) }
func FuzzCobertura(f *testing.F) {
	fuzzCoverage(f, "*cobertura*.xml", "Cobertura XML: ", parseCobertura)
}
func FuzzLCOV(f *testing.F) { fuzzCoverage(f, "*.info", "LCOV: ", parseLCOV) }

// checkCoverageInvariants asserts what any coverage report must satisfy.
func checkCoverageInvariants(t *testing.T, rep *Report) {
	t.Helper()
	pct := func(k string, required bool) {
		v, ok := rep.Facts[k]
		if !ok {
			if required {
				t.Fatalf("%s missing", k)
			}
			return
		}
		p, ok := v.(float64)
		if !ok || math.IsNaN(p) || p < 0 || p > 100 || math.Round(p*100)/100 != p {
			t.Fatalf("%s = %#v, want a percentage with 2 decimals", k, v)
		}
	}
	pct("coverage.line_percent", true)
	pct("coverage.branch_percent", false)
	pct("coverage.function_percent", false)
	total, ok1 := rep.Facts["coverage.lines_total"].(float64)
	covered, ok2 := rep.Facts["coverage.lines_covered"].(float64)
	files, ok3 := rep.Facts["coverage.files"].(float64)
	if !ok1 || !ok2 || !ok3 || covered < 0 || covered > total || files < 0 {
		t.Fatalf("inconsistent facts %v", rep.Facts)
	}
	if rep.Type != Coverage {
		t.Fatalf("type %q", rep.Type)
	}
}
