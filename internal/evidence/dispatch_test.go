package evidence

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// seeds returns the contents of testdata/<typ>/<glob> for fuzz corpora.
func tccSeeds(t testing.TB, typ Type, glob string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", string(typ), glob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds for %s/%s", typ, glob)
	}
	var out [][]byte
	for _, f := range files {
		if strings.HasSuffix(f, ".facts.json") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestParseDispatch(t *testing.T) {
	t.Parallel()
	junit := `<?xml version="1.0"?><testsuite name="x"><testcase name="a"/></testsuite>`
	for _, tc := range []struct {
		name       string
		typ        Type
		doc        string
		wantFormat string
		wantErr    string // substring; "" means success
		formatErr  bool   // the error is a *FormatError
	}{
		{"junit", Tests, junit, "junit", "", false},
		{"junit with BOM", Tests, "\uFEFF" + junit, "junit", "", false},
		{"junit with comment and doctype first", Tests, "<!-- x --><!DOCTYPE testsuites>\n<testsuites></testsuites>", "junit", "", false},
		{"go test json", Tests, `{"Action":"pass","Package":"p","Test":"T"}` + "\n", "go-test-json", "", false},
		{"go test json after build noise", Tests, "# p\nvet: x\n" + `{"Action":"pass","Package":"p","Test":"T"}` + "\n", "go-test-json", "", false},
		{"coverprofile", Coverage, "mode: set\na.go:1.1,2.2 1 1\n", "go-coverprofile", "", false},
		{"cobertura", Coverage, `<coverage lines-valid="2" lines-covered="1"></coverage>`, "cobertura", "", false},
		{"lcov", Coverage, "TN:\nSF:a.js\nLF:2\nLH:1\nend_of_record\n", "lcov", "", false},
		{"changeset", Changeset, "a.go\n", "git-name-only", "", false},
		{"empty changeset is no change", Changeset, "", "git-name-only", "", false},
		{"unknown type", Type("bogus"), junit, "", `unknown evidence type "bogus"`, false},
		{"junit sent as coverage", Coverage, junit, "", "coverage evidence: document is in none of the accepted formats (cobertura, go-coverprofile, lcov); it looks like junit (tests evidence)", true},
		{"coverprofile sent as tests", Tests, "mode: set\n", "", "accepted formats (go-test-json, junit); it looks like go-coverprofile (coverage evidence)", true},
		{"cobertura sent as changeset", Changeset, `<coverage/>`, "", "it looks like cobertura (coverage evidence)", true},
		{"other XML", Tests, `<html><body/></html>`, "", "it looks like XML with root element <html>", true},
		{"empty tests", Tests, " \n", "", "tests evidence: document is empty; formats: go-test-json, junit", true},
		{"plain text as tests", Tests, "ok  \tpkg\t0.1s\n", "", "none of the accepted formats", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Parse(tc.typ, strings.NewReader(tc.doc), Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				var fe *FormatError
				if errors.As(err, &fe) != tc.formatErr {
					t.Errorf("err %T: FormatError = %v, want %v", err, !tc.formatErr, tc.formatErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Format != tc.wantFormat || rep.Type != tc.typ {
				t.Errorf("got %s/%s, want %s/%s", rep.Type, rep.Format, tc.typ, tc.wantFormat)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	// A coverprofile forced to LCOV is an LCOV error, not a coverprofile.
	_, err := ParseFormat(Coverage, "lcov", strings.NewReader("mode: set\n"), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "LCOV: ") {
		t.Errorf("err = %v, want an LCOV error", err)
	}
	rep, err := ParseFormat(Coverage, "go-coverprofile", strings.NewReader("mode: set\na.go:1.1,2.2 3 0\n"), Options{})
	if err != nil || rep.Facts["coverage.lines_total"] != 3.0 {
		t.Errorf("ParseFormat = %v, %v", rep, err)
	}
	_, err = ParseFormat(Coverage, "jacoco", strings.NewReader("x"), Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown format "jacoco"; formats: cobertura, go-coverprofile, lcov`) {
		t.Errorf("err = %v", err)
	}
}

func TestParseSuite(t *testing.T) {
	t.Parallel()
	doc := `<testsuite><testcase name="a"/></testsuite>`
	rep, err := Parse(Tests, strings.NewReader(doc), Options{Suite: E2E})
	if err != nil || rep.Facts["tests.suite"] != "e2e" {
		t.Fatalf("suite e2e: %v %v", rep, err)
	}
	rep, err = Parse(Tests, strings.NewReader(doc), Options{})
	if err != nil || rep.Facts["tests.suite"] != "unit" {
		t.Fatalf("default suite: %v %v", rep, err)
	}
	if _, err := Parse(Tests, strings.NewReader(doc), Options{Suite: "soak"}); err == nil || !strings.Contains(err.Error(), `unknown test suite "soak"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	for typ, want := range map[Type][]string{
		// Registration order is the order of the files' names.
		Tests:     {"go-test-json", "junit"},
		Coverage:  {"cobertura", "go-coverprofile", "lcov"},
		Changeset: {"git-name-only"},
	} {
		if got := Formats(typ); !reflect.DeepEqual(got, want) {
			t.Errorf("Formats(%s) = %v, want %v", typ, got, want)
		}
	}
}

func TestRegisterRejectsMistakes(t *testing.T) {
	// Not parallel-sensitive: every case panics before touching the table.
	p := func(head []byte) bool { return false }
	for name, f := range map[string]func(){
		"unknown type": func() { register("bogus", "x", p, parseJUnit) },
		"duplicate":    func() { register(Tests, "junit", p, parseJUnit) },
		"no sniffer":   func() { register(Tests, "y", nil, parseJUnit) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: register did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestSniffHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		head string
		root string
	}{
		{`<?xml version="1.0" encoding="UTF-8"?>` + "\n<testsuites>", "testsuites"},
		{`<?xml version="1.0"?><!DOCTYPE coverage SYSTEM "x.dtd"><coverage line-rate="1">`, "coverage"},
		{`<coverage line-rate="1"`, ""}, // cut inside the root tag
		{`  <ns:testsuite xmlns:ns="u">`, "testsuite"},
		{`{"a":1}`, ""},
		{`hello <b>`, ""},
	} {
		if got := xmlRoot([]byte(tc.head)); got != tc.root {
			t.Errorf("xmlRoot(%q) = %q, want %q", tc.head, got, tc.root)
		}
	}
	if !jsonHasKey([]byte(`{"x": "Action", "Action" : 1}`), "Action") || jsonHasKey([]byte(`{"x": "Action"}`), "Action") {
		t.Error("jsonHasKey")
	}
	if string(firstLine([]byte("\n \r\n  mode: set\r\nx"))) != "mode: set" {
		t.Error("firstLine")
	}
}
