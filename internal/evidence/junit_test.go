package evidence

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestJUnit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		doc   string
		facts map[string]any // a subset of the expected facts
	}{
		{
			name: "single testsuite root",
			doc: `<testsuite name="s" time="1.5"><testcase name="a" classname="C"/><testcase name="b" classname="C"><failure/></testcase>
				<testcase name="c"><error message="boom"/></testcase><testcase name="d"><skipped/></testcase></testsuite>`,
			facts: map[string]any{"tests.total": 4.0, "tests.passed": 1.0, "tests.failed": 2.0, "tests.errors": 1.0, "tests.skipped": 1.0,
				"tests.duration_seconds": 1.5, "tests.failed_names": []string{"C.b", "c"}},
		},
		{
			name:  "error wins over failure in one testcase",
			doc:   `<testsuite><testcase name="a"><failure/><error/></testcase></testsuite>`,
			facts: map[string]any{"tests.total": 1.0, "tests.failed": 1.0, "tests.errors": 1.0},
		},
		{
			name: "nested suites, duration from children when time is missing",
			doc: `<testsuites><testsuite name="outer"><testsuite name="inner" time="2"><testcase name="x" time="9"/></testsuite>
				<testcase name="y" time="0.25"/></testsuite><testcase name="z" time="1,000.5"/></testsuites>`,
			facts: map[string]any{"tests.total": 3.0, "tests.passed": 3.0, "tests.duration_seconds": 1002.75},
		},
		{
			name: "suite declaring more failures than its testcases show fails by the difference",
			doc:  `<testsuites><testsuite name="com.x.T" failures="1" errors="1"><testcase name="a"><failure/></testcase></testsuite></testsuites>`,
			facts: map[string]any{"tests.total": 2.0, "tests.failed": 2.0, "tests.errors": 1.0,
				"tests.failed_names": []string{"a", "com.x.T [suite error]"}},
		},
		{
			name: "declared counts consistent with nested suites add nothing",
			doc: `<testsuites failures="2"><testsuite failures="1"><testcase name="a"><failure/></testcase></testsuite>
				<testsuite failures="1"><testcase name="b"><failure/></testcase></testsuite></testsuites>`,
			facts: map[string]any{"tests.total": 2.0, "tests.failed": 2.0, "tests.errors": 0.0},
		},
		{
			name:  "flaky and rerun children do not decide",
			doc:   `<testsuite><testcase name="a"><flakyFailure/><system-out>x</system-out></testcase><testcase name="b"><rerunFailure/></testcase></testsuite>`,
			facts: map[string]any{"tests.passed": 2.0, "tests.failed": 0.0},
		},
		{
			name:  "failure elements outside a testcase are not tests",
			doc:   `<testsuite><properties><failure/></properties><testcase name="a"><system-out><failure/></system-out></testcase></testsuite>`,
			facts: map[string]any{"tests.total": 1.0, "tests.passed": 1.0},
		},
		{
			name:  "empty suite",
			doc:   `<?xml version="1.0"?><testsuites/>`,
			facts: map[string]any{"tests.total": 0.0, "tests.failed_names": []string{}},
		},
		{
			name:  "namespaced elements",
			doc:   `<j:testsuite xmlns:j="urn:x"><j:testcase name="a"><j:skipped/></j:testcase></j:testsuite>`,
			facts: map[string]any{"tests.skipped": 1.0},
		},
		{
			name:  "bad time is ignored",
			doc:   `<testsuite time="soon"><testcase name="a" time="-1"/><testcase name="b" time="NaN"/><testcase name="c" time="0.5"/></testsuite>`,
			facts: map[string]any{"tests.duration_seconds": 0.5},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := parseJUnit(strings.NewReader(tc.doc), Options{})
			if err != nil {
				t.Fatal(err)
			}
			tccFacts(t, rep, tc.facts)
			checkTestInvariants(t, rep)
		})
	}
}

func TestJUnitFailedNamesCapped(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("<testsuite>")
	for i := range 25 {
		fmt.Fprintf(&b, `<testcase name="T%d%s"><failure/></testcase>`, i, strings.Repeat("x", 300*(i%2)))
	}
	b.WriteString("</testsuite>")
	rep, err := parseJUnit(strings.NewReader(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := rep.Facts["tests.failed_names"].([]string)
	if rep.Facts["tests.failed"] != 25.0 || len(names) != 20 || names[0] != "T0" || names[19][:3] != "T19" {
		t.Fatalf("failed %v, names %d: %q", rep.Facts["tests.failed"], len(names), names)
	}
	if len(names[1]) > maxNameBytes || !strings.HasSuffix(names[1], "…") {
		t.Errorf("long name not clipped: %d bytes", len(names[1]))
	}
}

func TestJUnitErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"not XML", `hello`, "JUnit XML: no root element"},
		{"malformed", "<testsuite>\n<testcase name='a'>\n</testsuite>", "JUnit XML: line 3: malformed XML: element <testcase> closed by </testsuite>"},
		{"truncated", "<testsuites>\n<testsuite name=\"a\">\n<testcase name=\"x\"/>", "JUnit XML: line 3: malformed XML: unexpected EOF"},
		{"wrong root", "<coverage/>", "JUnit XML: line 1: root element is <coverage>, want <testsuites> or <testsuite>"},
		{"two roots", "<testsuite/>\n<testsuite/>", "JUnit XML: line 2: element <testsuite> after the root element ended"},
		{"bad count", `<testsuite name="s" failures="many"/>`, `JUnit XML: line 1: <testsuite name="s"> has failures="many", want a count`},
		{"negative count", `<testsuite errors="-1"/>`, `has errors="-1", want a count`},
		{"undeclared entity", `<testsuite name="&x;"/>`, "JUnit XML: line 1: malformed XML: invalid character entity &x;"},
		{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><testsuite/>`, `JUnit XML: malformed XML: xml: encoding "ISO-8859-1" declared but Decoder.CharsetReader is nil`},
		{"too deep", strings.Repeat("<testsuite>", maxXMLDepth+1), "elements nested deeper than 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseJUnit(strings.NewReader(tc.doc), Options{})
			tccFormatError(t, err, tc.want)
		})
	}
}

func FuzzJUnit(f *testing.F) {
	for _, s := range tccSeeds(f, Tests, "*.xml") {
		f.Add(s)
	}
	f.Add([]byte(`<testsuite failures="3"><testcase name="a"><error/></testcase></testsuite>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rep, err := parseJUnit(bytes.NewReader(doc), Options{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "JUnit XML: ") {
				t.Fatalf("error %T %q is not a JUnit FormatError", err, err)
			}
			return
		}
		checkTestInvariants(t, rep)
	})
}

// tccFacts asserts rep has (at least) the facts in want.
func tccFacts(t *testing.T, rep *Report, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got, ok := rep.Facts[k]; !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
}

// checkTestInvariants asserts what any tests report must satisfy.
func checkTestInvariants(t *testing.T, rep *Report) {
	t.Helper()
	f := rep.Facts
	num := func(k string) float64 {
		v, ok := f[k].(float64)
		if !ok || v < 0 {
			t.Fatalf("%s = %#v, want a non-negative float64", k, f[k])
		}
		return v
	}
	total, passed, failed, errs, skipped := num("tests.total"), num("tests.passed"), num("tests.failed"), num("tests.errors"), num("tests.skipped")
	num("tests.duration_seconds")
	if total != passed+failed+skipped || errs > failed {
		t.Fatalf("inconsistent counts: %v", f)
	}
	names, ok := f["tests.failed_names"].([]string)
	if !ok || len(names) > maxFailedNames || float64(len(names)) > failed || (failed > 0 && len(names) == 0) {
		t.Fatalf("failed_names %#v for %v failed", f["tests.failed_names"], failed)
	}
	if s, ok := f["tests.suite"].(string); !ok || s == "" {
		t.Fatalf("tests.suite = %#v", f["tests.suite"])
	}
	if rep.Type != Tests {
		t.Fatalf("type %q", rep.Type)
	}
}

// tccFormatError asserts err is a *FormatError whose text is want.
func tccFormatError(t *testing.T, err error, want string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want a *FormatError %q", err, err, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want it to contain %q", err, want)
	}
}
