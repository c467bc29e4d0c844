package evidence

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestCycloneDXFacts(t *testing.T) {
	t.Parallel()
	h := strings.Repeat("d", 64)
	doc := `{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"component":{"name":"app","hashes":[
			{"alg":"SHA-512","content":"` + strings.Repeat("e", 128) + `"},{"alg":"SHA-256","content":"` + h + `"}]}},
		"components":[
			{"name":"a","licenses":[{"license":{"id":"MIT"}}],"components":[
				{"name":"a1","components":[{"name":"a11","licenses":[{"expression":"MIT OR Apache-2.0"}]}]}]},
			{"name":"b","evidence":{"licenses":[{"license":{"name":"BSD"}}]}},
			{"name":"c","licenses":[]}]}`
	rep, err := scanParseString(cycloneDXParser, doc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"sbom.format": "cyclonedx", "sbom.spec_version": "1.6", "sbom.components": 5.0, "sbom.licenses_known": 3.0}
	if fmt.Sprint(rep.Facts) != fmt.Sprint(want) {
		t.Errorf("facts\n got %v\nwant %v", rep.Facts, want)
	}
	if fmt.Sprint(rep.Subjects) != "[sha256:"+h+"]" {
		t.Errorf("subjects %v", rep.Subjects)
	}
	if rep.Type != SBOM || rep.Format != "cyclonedx-json" {
		t.Errorf("type %q format %q", rep.Type, rep.Format)
	}
}

func TestSPDXSubjects(t *testing.T) {
	t.Parallel()
	sum := func(c byte) string {
		return `[{"algorithm":"SHA256","checksumValue":"` + strings.Repeat(string(c), 64) + `"}]`
	}
	// A is described through documentDescribes, B through a DESCRIBES
	// relationship that comes after the packages, C through DESCRIBED_BY;
	// D has a checksum but is only contained.
	doc := `{"spdxVersion":"SPDX-2.3","documentDescribes":["A"],"packages":[
			{"SPDXID":"A","checksums":` + sum('a') + `,"licenseConcluded":"MIT"},
			{"SPDXID":"B","checksums":` + sum('b') + `,"licenseDeclared":"NOASSERTION"},
			{"SPDXID":"C","checksums":` + sum('c') + `},
			{"SPDXID":"D","checksums":` + sum('d') + `,"licenseDeclared":"Apache-2.0"}],
		"relationships":[
			{"spdxElementId":"SPDXRef-DOCUMENT","relationshipType":"DESCRIBES","relatedSpdxElement":"B"},
			{"spdxElementId":"C","relationshipType":"DESCRIBED_BY","relatedSpdxElement":"SPDXRef-DOCUMENT"},
			{"spdxElementId":"A","relationshipType":"CONTAINS","relatedSpdxElement":"D"}]}`
	rep, err := scanParseString(spdxParser, doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("b", 64), "sha256:" + strings.Repeat("c", 64)}
	if fmt.Sprint(rep.Subjects) != fmt.Sprint(want) {
		t.Errorf("subjects\n got %v\nwant %v", rep.Subjects, want)
	}
	if rep.Facts["sbom.components"] != 4.0 || rep.Facts["sbom.licenses_known"] != 2.0 {
		t.Errorf("facts %v", rep.Facts)
	}
}

func TestSBOMErrors(t *testing.T) {
	t.Parallel()
	spdx, err := os.ReadFile("testdata/sbom/npm-sbom.spdx.json")
	if err != nil {
		t.Fatal(err)
	}
	cdx, err := os.ReadFile("testdata/sbom/npm-sbom.cdx.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		parser Parser
		format string
		doc    string
		parts  []string
	}{
		{"cdx 1.3", cycloneDXParser, cdxName, `{"bomFormat":"CycloneDX","specVersion":"1.3","components":[]}`, []string{`unsupported specVersion "1.3"`, "1.4, 1.5, 1.6"}},
		{"cdx bomFormat", cycloneDXParser, cdxName, `{"bomFormat":"SPDX","specVersion":"1.5"}`, []string{`bomFormat is "SPDX"`}},
		{"cdx given SPDX", cycloneDXParser, cdxName, string(spdx), []string{"not a CycloneDX BOM", "SPDX"}},
		{"cdx XML", cycloneDXParser, cdxName, `<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.5"/>`, []string{"invalid JSON"}},
		{"cdx truncated", cycloneDXParser, cdxName, string(cdx[:len(cdx)-10]), []string{"truncated"}},
		{"cdx bad hash", cycloneDXParser, cdxName, `{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"component":{"hashes":[{"alg":"SHA-256","content":"xyz"}]}}}`, []string{"not 64 hex digits"}},
		{"cdx components object", cycloneDXParser, cdxName, `{"bomFormat":"CycloneDX","specVersion":"1.5","components":{}}`, []string{"components is an object"}},
		{"spdx 2.2", spdxParser, spdxName, `{"spdxVersion":"SPDX-2.2","packages":[]}`, []string{`unsupported spdxVersion "SPDX-2.2"`, "SPDX-2.3"}},
		{"spdx given CycloneDX", spdxParser, spdxName, string(cdx), []string{"not an SPDX document", "CycloneDX"}},
		{"spdx truncated", spdxParser, spdxName, string(spdx[:len(spdx)/2]), []string{"truncated"}},
		{"spdx bad checksum", spdxParser, spdxName, `{"spdxVersion":"SPDX-2.3","packages":[{"SPDXID":"A","checksums":[{"algorithm":"SHA256","checksumValue":"00"}]}]}`, []string{"package A", "not 64 hex digits"}},
		{"spdx tag-value", spdxParser, spdxName, "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", []string{"invalid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scanParseString(tt.parser, tt.doc)
			scanWantFormatError(t, err, tt.format, tt.parts...)
		})
	}
}

// TestSBOMDeepNesting checks nested components are counted to
// cdxMaxDepth levels and rejected beyond.
func TestSBOMDeepNesting(t *testing.T) {
	t.Parallel()
	nested := func(depth int) string {
		return `{"bomFormat":"CycloneDX","specVersion":"1.5","components":[` +
			strings.Repeat(`{"name":"x","licenses":[{"license":{"id":"MIT"}}],"components":[`, depth) + strings.Repeat(`]}`, depth) + `]}`
	}
	rep, err := scanParseString(cycloneDXParser, nested(cdxMaxDepth))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Facts["sbom.components"] != float64(cdxMaxDepth) || rep.Facts["sbom.licenses_known"] != float64(cdxMaxDepth) {
		t.Errorf("facts %v, want %d components with licenses", rep.Facts, cdxMaxDepth)
	}
	_, err = scanParseString(cycloneDXParser, nested(cdxMaxDepth+1))
	scanWantFormatError(t, err, cdxName, "nested more than 100 deep")
}

func FuzzCycloneDX(f *testing.F) {
	for _, in := range scanGoldenInputs(f, "sbom") {
		if strings.HasSuffix(in, ".cdx.json") {
			data, err := os.ReadFile("testdata/" + in)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			f.Add(data[:len(data)/2])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := cycloneDXParser(bytes.NewReader(data), Options{})
		scanCheckFuzz(t, rep, err, "")
		if err == nil && rep.Facts["sbom.licenses_known"].(float64) > rep.Facts["sbom.components"].(float64) {
			t.Fatalf("facts %v", rep.Facts)
		}
	})
}

func FuzzSPDX(f *testing.F) {
	for _, in := range scanGoldenInputs(f, "sbom") {
		if strings.HasSuffix(in, ".spdx.json") {
			data, err := os.ReadFile("testdata/" + in)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			f.Add(data[:len(data)/2])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := spdxParser(bytes.NewReader(data), Options{})
		scanCheckFuzz(t, rep, err, "")
		if err == nil && rep.Facts["sbom.licenses_known"].(float64) > rep.Facts["sbom.components"].(float64) {
			t.Fatalf("facts %v", rep.Facts)
		}
	})
}
