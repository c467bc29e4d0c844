package evidence

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestGoTestJSON(t *testing.T) {
	t.Parallel()
	ev := func(s ...string) string { return strings.Join(s, "\n") + "\n" }
	for _, tc := range []struct {
		name  string
		doc   string
		facts map[string]any
	}{
		{
			name: "tests and subtests counted, output and package events ignored",
			doc: ev(`{"Action":"start","Package":"p"}`,
				`{"Action":"run","Package":"p","Test":"TestA"}`,
				`{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA\n"}`,
				`{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}`,
				`{"Action":"fail","Package":"p","Test":"TestB/sub","Elapsed":0}`,
				`{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0}`,
				`{"Action":"skip","Package":"p","Test":"TestC"}`,
				`{"Action":"fail","Package":"p","Elapsed":1.25}`,
				`{"Action":"skip","Package":"q","Elapsed":0}`),
			facts: map[string]any{"tests.total": 4.0, "tests.passed": 1.0, "tests.failed": 2.0, "tests.errors": 0.0, "tests.skipped": 1.0,
				"tests.duration_seconds": 1.25, "tests.failed_names": []string{"p.TestB/sub", "p.TestB"}},
		},
		{
			name: "package failing with no failed test is an error",
			doc: ev(`{"Action":"pass","Package":"p","Test":"TestA"}`,
				`{"Action":"output","Package":"p","Output":"FAIL: TestMain exited 1\n"}`,
				`{"Action":"fail","Package":"p","Elapsed":0.5}`,
				`{"ImportPath":"q [q.test]","Action":"build-fail"}`,
				`{"Action":"fail","Package":"q","Elapsed":0,"FailedBuild":"q [q.test]"}`),
			facts: map[string]any{"tests.total": 3.0, "tests.passed": 1.0, "tests.failed": 2.0, "tests.errors": 2.0,
				"tests.failed_names": []string{"p [package failed]", "q [build failed]"}},
		},
		{
			name:  "text lines from 2>&1 are skipped, CRLF tolerated",
			doc:   "# q\r\nq/x.go:1:1: bad\r\n" + `{"Action":"pass","Package":"p","Test":"T"}` + "\r\nFAIL\tq [build failed]\r\n",
			facts: map[string]any{"tests.total": 1.0, "tests.passed": 1.0},
		},
		{
			name:  "-count=2 runs a test twice",
			doc:   ev(`{"Action":"pass","Package":"p","Test":"T"}`, `{"Action":"pass","Package":"p","Test":"T"}`),
			facts: map[string]any{"tests.total": 2.0},
		},
		{
			name:  "unknown actions are ignored",
			doc:   ev(`{"Action":"attr","Package":"p","Test":"T","Key":"k"}`, `{"Action":"pass","Package":"p","Test":"T"}`),
			facts: map[string]any{"tests.total": 1.0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := parseGoTestJSON(strings.NewReader(tc.doc), Options{Suite: Integration})
			if err != nil {
				t.Fatal(err)
			}
			tccFacts(t, rep, tc.facts)
			tccFacts(t, rep, map[string]any{"tests.suite": "integration"})
			checkTestInvariants(t, rep)
		})
	}
}

func TestGoTestJSONErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"truncated line", `{"Action":"pass","Package":"p","Test":"T"}` + "\n" + `{"Action":"pass","Pack`, "go test -json: line 2: malformed JSON (truncated?)"},
		{"no Action", `{"Package":"p"}`, "go test -json: line 1: JSON object without an Action is not a test2json event"},
		{"wrong type", `{"Action":"pass","Package":"p","Elapsed":"fast"}`, "go test -json: line 1: field Elapsed is a JSON string, not a test2json value"},
		{"array", `{"Action":["pass"]}`, "line 1: field Action is a JSON array"},
		{"no events", "ok  \tp\t0.1s\n", "go test -json: no test2json events"},
		{"empty", "", "go test -json: no test2json events"},
		{"line too long", `{"Action":"output","Output":"` + strings.Repeat("x", maxGoTestLine) + `"}`, "go test -json: line 1: longer than 4 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseGoTestJSON(strings.NewReader(tc.doc), Options{})
			tccFormatError(t, err, tc.want)
		})
	}
}

func FuzzGoTestJSON(f *testing.F) {
	for _, s := range tccSeeds(f, Tests, "*.json") {
		f.Add(s)
	}
	f.Add([]byte(`{"Action":"fail","Package":"p","FailedBuild":"x"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rep, err := parseGoTestJSON(bytes.NewReader(doc), Options{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "go test -json: ") {
				t.Fatalf("error %T %q is not a go test -json FormatError", err, err)
			}
			return
		}
		checkTestInvariants(t, rep)
	})
}
