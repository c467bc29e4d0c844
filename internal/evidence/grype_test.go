package evidence

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestGrypeFacts(t *testing.T) {
	t.Parallel()
	d := strings.Repeat("c", 64)
	doc := `{"matches":[
		{"vulnerability":{"id":"CVE-1","severity":"Critical","fix":{"versions":[],"state":"fixed"}},"artifact":{"name":"a","version":"1"}},
		{"vulnerability":{"id":"CVE-2","severity":"Negligible","fix":{"versions":[],"state":"not-fixed"}},"artifact":{"name":"a","version":"1"}},
		{"vulnerability":{"id":"CVE-3","severity":"Low","fix":{"versions":["2.0"],"state":"unknown"}},"artifact":{"name":"b","version":"1"}}],
		"ignoredMatches":[{"vulnerability":{"id":"CVE-4","severity":"Critical"},"artifact":{"name":"c","version":"1"}}],
		"source":{"type":"image","target":{"manifestDigest":"sha256:` + d + `","imageID":"not-a-digest","repoDigests":["r@sha256:` + d + `"]}},
		"descriptor":{"name":"grype","version":"0.74.0"}}`
	rep, err := scanParseString(grypeParser(ContainerScan), doc)
	if err != nil {
		t.Fatal(err)
	}
	p := "container-scan"
	want := map[string]any{
		p + ".count.critical": 1.0, p + ".count.high": 0.0, p + ".count.medium": 0.0, p + ".count.low": 1.0,
		p + ".count.none": 1.0, p + ".count.total": 3.0, p + ".max_severity": "critical",
		p + ".fixable": 2.0, p + ".packages": 2.0,
	}
	if fmt.Sprint(rep.Facts) != fmt.Sprint(want) {
		t.Errorf("facts\n got %v\nwant %v", rep.Facts, want)
	}
	if fmt.Sprint(rep.Subjects) != "[sha256:"+d+"]" {
		t.Errorf("subjects %v", rep.Subjects)
	}
	if rep.Findings[0].ID != "CVE-1" || rep.Findings[1].Message != "fixed in 2.0" {
		t.Errorf("findings %+v", rep.Findings)
	}
}

func TestGrypeErrors(t *testing.T) {
	t.Parallel()
	img, err := os.ReadFile("testdata/grype/image.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc string
		parts     []string
	}{
		{"truncated", string(img[:len(img)/3]), []string{"truncated"}},
		{"trivy report", `{"SchemaVersion":2,"ArtifactName":"x","Results":[]}`, []string{"not a Grype report", "Trivy"}},
		{"other tool", `{"matches":[],"descriptor":{"name":"syft"}}`, []string{`descriptor.name is "syft"`}},
		{"bad severity", `{"matches":[{"vulnerability":{"id":"CVE-9","severity":"Urgent"}}]}`, []string{"CVE-9", `"Urgent"`}},
		{"matches not array", `{"matches":{}}`, []string{"matches is an object, want an array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scanParseString(grypeParser(SCA), tt.doc)
			scanWantFormatError(t, err, grypeName, tt.parts...)
		})
	}
}

func FuzzGrype(f *testing.F) {
	scanFuzzSeeds(f, "grype")
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := grypeParser(SCA)(bytes.NewReader(data), Options{})
		scanCheckFuzz(t, rep, err, "sca")
	})
}
