package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/decode")

// widgetSpec is a spec with every shape the decoder must check.
type widgetSpec struct {
	Image    string            `json:"image"`
	Replicas int               `json:"replicas,omitempty"`
	Shards   int8              `json:"shards,omitempty"`
	Weight   float64           `json:"weight,omitempty"`
	Paused   bool              `json:"paused,omitempty"`
	Deadline time.Time         `json:"deadline,omitzero"`
	Env      map[string]string `json:"env,omitempty"`
	Ports    []widgetPort      `json:"ports,omitempty"`
	Limits   *widgetLimits     `json:"limits,omitempty"`
	Extra    json.RawMessage   `json:"extra,omitempty"`
}

type widgetPort struct {
	Name string `json:"name"`
	Port int    `json:"port"`
}

type widgetLimits struct {
	CPU    string `json:"cpu,omitempty"`
	Memory struct {
		MaxMB int `json:"maxMB"`
	} `json:"memory"`
}

func testScheme() *Scheme {
	s := NewScheme()
	s.Register(Kind{
		Name: "Widget", Plural: "widgets", Aliases: []string{"wd"}, Declarative: true,
		NewSpec: func() any { return &widgetSpec{} },
		Validate: func(obj *Object, spec any) error {
			w := spec.(*widgetSpec)
			if w.Image == "" {
				return Errorf("spec.image", "image is required")
			}
			for i, p := range w.Ports {
				if p.Port < 1 || p.Port > 65535 {
					return Errorf(fmt.Sprintf("spec.ports[%d].port", i), "port %d is out of range 1-65535", p.Port)
				}
			}
			return nil
		},
	})
	s.Register(Kind{Name: "Gadget", Plural: "gadgets"}) // spec is free-form JSON
	return s
}

// TestDecodeGolden runs testdata/decode/*.txtar. Each archive holds
// input.yaml and either want.json (the decoded objects) or error (the
// error text). Run with -update to rewrite the expectations.
func TestDecodeGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/decode/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	s := testScheme()
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ar := parseTxtar(data)
			input, ok := ar.get("input.yaml")
			if !ok {
				t.Fatal("no input.yaml section")
			}
			objs, err := s.Decode("input.yaml", []byte(input))
			var gotName, got string
			if err != nil {
				if objs != nil {
					t.Errorf("Decode returned objects and an error")
				}
				var de DecodeErrors
				if !errors.As(err, &de) {
					t.Errorf("error is %T, not DecodeErrors", err)
				}
				gotName, got = "error", err.Error()+"\n"
			} else {
				b, err := json.MarshalIndent(objs, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				gotName, got = "want.json", string(b)+"\n"
				checkRoundTrip(t, s, objs)
			}
			if *update {
				ar.files = ar.files[:1]
				ar.files = append(ar.files, txtarFile{gotName, got})
				if err := os.WriteFile(file, ar.format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, name := range []string{"want.json", "error"} {
				want, ok := ar.get(name)
				if !ok {
					continue
				}
				if name != gotName {
					t.Fatalf("expected %s:\n%s\ngot %s:\n%s", name, want, gotName, got)
				}
				if got != want {
					t.Fatalf("%s differs\n--- got\n%s--- want\n%s", name, got, want)
				}
				return
			}
			t.Fatalf("no want.json or error section; got %s:\n%s", gotName, got)
		})
	}
}

// checkRoundTrip encodes objs as JSON, decodes that again and checks that
// the result encodes the same: what the decoder accepts, it accepts back.
func checkRoundTrip(t testing.TB, s *Scheme, objs []*Object) {
	t.Helper()
	if len(objs) == 0 {
		return
	}
	first, err := json.Marshal(objs)
	if err != nil {
		t.Fatalf("encode decoded objects: %v", err)
	}
	list := fmt.Sprintf(`{"apiVersion":%q,"kind":"List","items":%s}`, APIVersion, first)
	again, err := s.Decode("round trip", []byte(list))
	if err != nil {
		t.Fatalf("decoded objects do not decode again: %v\n%s", err, first)
	}
	second, _ := json.Marshal(again)
	if !bytes.Equal(first, second) {
		t.Fatalf("round trip changed the objects:\n%s\n%s", first, second)
	}
}

type txtarFile struct{ name, data string }

type txtarArchive struct {
	comment string
	files   []txtarFile
}

// parseTxtar reads the txtar format: a comment, then sections that each
// start with a line "-- name --".
func parseTxtar(data []byte) *txtarArchive {
	ar := &txtarArchive{}
	cur := &ar.comment
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) >= 6 {
			ar.files = append(ar.files, txtarFile{name: strings.TrimSpace(trimmed[3 : len(trimmed)-3])})
			cur = &ar.files[len(ar.files)-1].data
			continue
		}
		*cur += line
	}
	return ar
}

func (ar *txtarArchive) get(name string) (string, bool) {
	for _, f := range ar.files {
		if f.name == name {
			return f.data, true
		}
	}
	return "", false
}

func (ar *txtarArchive) format() []byte {
	var b strings.Builder
	b.WriteString(ar.comment)
	for _, f := range ar.files {
		fmt.Fprintf(&b, "-- %s --\n%s", f.name, f.data)
	}
	return []byte(b.String())
}
