package evidence

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestTrivyFacts(t *testing.T) {
	t.Parallel()
	doc := `{"SchemaVersion":2,"ArtifactName":"x","Metadata":{"ImageID":"sha256:` + strings.Repeat("a", 64) + `",
		"RepoDigests":["r@sha256:` + strings.Repeat("B", 64) + `","r@sha256:short","r@sha256:` + strings.Repeat("a", 64) + `"]},
		"Results":[{"Target":"t","Vulnerabilities":[
			{"VulnerabilityID":"CVE-1","PkgName":"p","InstalledVersion":"1","FixedVersion":"2","Severity":"HIGH"},
			{"VulnerabilityID":"CVE-2","PkgName":"p","InstalledVersion":"1","Severity":"UNKNOWN"},
			{"VulnerabilityID":"CVE-3","PkgName":"q","InstalledVersion":"1","Severity":"critical"}],
		"Misconfigurations":[
			{"ID":"KSV1","Severity":"MEDIUM","Status":"PASS"},
			{"ID":"KSV2","Severity":"MEDIUM","Status":"FAIL","CauseMetadata":{"StartLine":4}}]}]}`
	rep, err := scanParseString(trivyParser(SCA), doc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"sca.count.critical": 1.0, "sca.count.high": 1.0, "sca.count.medium": 1.0, "sca.count.low": 0.0,
		"sca.count.none": 1.0, "sca.count.total": 4.0, "sca.max_severity": "critical",
		"sca.fixable": 1.0, "sca.packages": 2.0,
	}
	if fmt.Sprint(rep.Facts) != fmt.Sprint(want) {
		t.Errorf("facts\n got %v\nwant %v", rep.Facts, want)
	}
	subjects := []string{"sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("b", 64)}
	if fmt.Sprint(rep.Subjects) != fmt.Sprint(subjects) {
		t.Errorf("subjects %v, want %v", rep.Subjects, subjects)
	}
	if rep.Findings[0].ID != "CVE-3" || rep.Findings[2].Location != "t:4" {
		t.Errorf("findings %+v", rep.Findings)
	}
}

func TestTrivyErrors(t *testing.T) {
	t.Parallel()
	img, err := os.ReadFile("testdata/trivy/image-alpine.json")
	if err != nil {
		t.Fatal(err)
	}
	grype, err := os.ReadFile("testdata/grype/image.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc string
		parts     []string
	}{
		{"empty", " ", []string{"empty document"}},
		{"truncated", string(img[:len(img)-40]), []string{"truncated"}},
		{"grype report", string(grype), []string{"not a Trivy report", "Grype"}},
		{"schema 1", `{"SchemaVersion":1,"Results":[]}`, []string{"unsupported SchemaVersion 1", "supported: 2"}},
		{"no results", `{"SchemaVersion":2,"ArtifactName":"x"}`, []string{`no "Results"`}},
		{"bad severity", `{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-9","Severity":"SEVERE"}]}]}`, []string{"CVE-9", `"SEVERE"`}},
		{"wrong type", `{"SchemaVersion":2,"Results":[{"Vulnerabilities":{}}]}`, []string{"Results[].Vulnerabilities", "got JSON object, want an array"}},
		{"wrong field type", `{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"Severity":5}]}]}`, []string{"Severity", "number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scanParseString(trivyParser(ContainerScan), tt.doc)
			scanWantFormatError(t, err, trivyName, tt.parts...)
		})
	}
}

func FuzzTrivy(f *testing.F) {
	scanFuzzSeeds(f, "trivy")
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := trivyParser(SCA)(bytes.NewReader(data), Options{})
		scanCheckFuzz(t, rep, err, "sca")
	})
}
