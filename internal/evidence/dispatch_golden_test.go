package evidence

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateTCCGolden = flag.Bool("update-tcc", false, "rewrite the *.facts.json of testdata/{tests,coverage,changeset}")

// factsGolden is an expected result: the format and facts, or an error.
type factsGolden struct {
	Format string         `json:"format,omitempty"`
	Facts  map[string]any `json:"facts,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// factsGoldenInputs lists the real tool outputs under testdata/<type>, which
// are every file but READMEs and the expected *.facts.json.
func factsGoldenInputs(t testing.TB, typ Type) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", string(typ)))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || n == "README.md" || strings.HasSuffix(n, ".facts.json") {
			continue
		}
		files = append(files, filepath.Join("testdata", string(typ), n))
	}
	if len(files) == 0 {
		t.Fatalf("no golden inputs for %s", typ)
	}
	return files
}

// TestFactsGolden parses each real tool output through the dispatcher, so
// sniffing is tested too, and compares the report with the expected facts.
func TestFactsGolden(t *testing.T) {
	t.Parallel()
	for _, typ := range []Type{Tests, Coverage, Changeset} {
		for _, in := range factsGoldenInputs(t, typ) {
			t.Run(strings.TrimPrefix(in, "testdata/"), func(t *testing.T) {
				t.Parallel()
				data, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				var got factsGolden
				rep, err := Parse(typ, bytes.NewReader(data), Options{})
				if err != nil {
					got.Error = err.Error()
				} else {
					if rep.Type != typ {
						t.Errorf("report type %q, want %q", rep.Type, typ)
					}
					got.Format, got.Facts = rep.Format, rep.Facts
				}
				gotJSON, err := json.MarshalIndent(got, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				gotJSON = append(gotJSON, '\n')
				want := in + ".facts.json"
				if *updateTCCGolden {
					if err := os.WriteFile(want, gotJSON, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				wantJSON, err := os.ReadFile(want)
				if err != nil {
					t.Fatalf("%v (run with -update-tcc to create it)", err)
				}
				// Compare as decoded JSON so formatting does not matter.
				var a, b any
				if err := json.Unmarshal(gotJSON, &a); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(wantJSON, &b); err != nil {
					t.Fatalf("%s: %v", want, err)
				}
				if !factsJSONEqual(a, b) {
					t.Errorf("facts differ from %s\ngot:\n%s\nwant:\n%s", want, gotJSON, wantJSON)
				}
			})
		}
	}
}

func factsJSONEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
