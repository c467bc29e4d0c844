package resource

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary input to Decode: it must never panic, and any
// objects it accepts must encode to JSON that decodes to the same objects.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/decode/*.txtar")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if in, ok := parseTxtar(data).get("input.yaml"); ok {
			f.Add([]byte(in))
		}
	}
	f.Add([]byte(`{"apiVersion":"airlock.dev/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"image":"x"}}`))
	s := testScheme()
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := s.Decode("fuzz", data)
		if err != nil {
			if objs != nil {
				t.Fatal("objects returned with an error")
			}
			return
		}
		for _, o := range objs {
			if ValidateName(o.Metadata.Name) != nil || ValidateLabels(o.Metadata.Labels) != nil {
				t.Fatalf("accepted an object with an invalid name or labels: %+v", o.Metadata)
			}
		}
		checkRoundTrip(t, s, objs)
	})
}
