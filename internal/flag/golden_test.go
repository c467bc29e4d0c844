package flag_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	ff "github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/resource"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/golden/*.txtar")

// TestGolden runs testdata/golden/*.txtar. Each archive holds input.yaml
// (Segments and Flags) and either error (what apply would say) or
// requests (lines of FLAG-NAME then an OFREP request body) and results
// (one line per request). Run with -update to rewrite the expectations.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	sch := resource.NewScheme()
	ff.Register(sch)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			t.Parallel()
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sections := map[string]string{}
			for _, f := range ar.Files {
				sections[f.Name] = string(f.Data)
			}
			gotName, got := run(sch, sections)
			if *update {
				var keep []txtar.File
				for _, f := range ar.Files {
					if f.Name == "input.yaml" || f.Name == "requests" {
						keep = append(keep, f)
					}
				}
				ar.Files = append(keep, txtar.File{Name: gotName, Data: []byte(got)})
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, ok := sections[gotName]
			if !ok {
				t.Fatalf("no %s section; got:\n%s", gotName, got)
			}
			if got != want {
				t.Fatalf("%s differs\n--- got\n%s--- want\n%s", gotName, got, want)
			}
		})
	}
}

// run decodes and compiles the input and evaluates the requests. It
// returns the name of the section its output belongs in.
func run(sch *resource.Scheme, sections map[string]string) (string, string) {
	objs, err := sch.Decode("input.yaml", []byte(sections["input.yaml"]))
	if err != nil {
		return "error", err.Error() + "\n"
	}
	segs := map[string]ff.SegmentSpec{}
	var specs []*resource.Object
	for _, o := range objs {
		if o.Kind == ff.SegmentKindName {
			var g ff.SegmentSpec
			if err := o.DecodeSpec(&g); err != nil {
				return "error", err.Error() + "\n"
			}
			segs[o.Metadata.Name] = g
		} else {
			specs = append(specs, o)
		}
	}
	evals := map[string]*ff.Evaluator{}
	for _, o := range specs {
		var s ff.Spec
		if err := o.DecodeSpec(&s); err != nil {
			return "error", err.Error() + "\n"
		}
		e, err := ff.Compile(s, segs)
		if err != nil {
			return "error", o.Ref() + ": " + err.Error() + "\n"
		}
		evals[o.Metadata.Name] = e
	}
	var out bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(sections["requests"]), "\n") {
		if line == "" {
			continue
		}
		name, body, _ := strings.Cut(line, " ")
		c, err := ff.DecodeRequestBytes([]byte(body))
		if err != nil {
			fmt.Fprintf(&out, "%s\n", err)
			continue
		}
		e, ok := evals[name]
		if !ok {
			fmt.Fprintf(&out, "no flag %s in input.yaml\n", name)
			continue
		}
		r := e.Evaluate(c)
		v, _ := json.Marshal(r.Value)
		fmt.Fprintf(&out, "%s %s %s", r.Variant, v, r.Reason)
		if r.ErrorCode != "" {
			fmt.Fprintf(&out, " %s", r.ErrorCode)
		}
		out.WriteByte('\n')
	}
	return "results", out.String()
}
