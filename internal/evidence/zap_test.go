package evidence

import (
	"bytes"
	"fmt"
	"testing"
)

func TestZAPRiskCodes(t *testing.T) {
	t.Parallel()
	// Numbers as strings (as ZAP writes them) and as numbers; a false
	// positive (confidence 0) is not counted.
	doc := `{"@version":"2.15.0","site":[
		{"@name":"https://a","alerts":[
			{"pluginid":"1","alert":"A","riskcode":"3","confidence":"2","instances":[{"uri":"https://a/x","method":"POST"}]},
			{"pluginid":"2","name":"B","riskcode":2,"confidence":3},
			{"pluginid":"3","alertRef":"3-1","alert":"C","riskcode":"0","confidence":"1"},
			{"pluginid":"4","alert":"D","riskcode":"3","confidence":"0"}]},
		{"@name":"https://b","alerts":[{"pluginid":"5","alert":"E","riskcode":"1","confidence":"2"}]}]}`
	rep, err := scanParseString(zapParser, doc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"dast.count.critical": 0.0, "dast.count.high": 1.0, "dast.count.medium": 1.0, "dast.count.low": 1.0,
		"dast.count.none": 1.0, "dast.count.total": 4.0, "dast.max_severity": "high",
		"dast.sites": []string{"https://a", "https://b"},
	}
	if fmt.Sprint(rep.Facts) != fmt.Sprint(want) {
		t.Errorf("facts\n got %v\nwant %v", rep.Facts, want)
	}
	wantFindings := []Finding{
		{ID: "1", Severity: High, Location: "POST https://a/x", Message: "A"},
		{ID: "2", Severity: Medium, Location: "https://a", Message: "B"},
		{ID: "5", Severity: Low, Location: "https://b", Message: "E"},
		{ID: "3-1", Severity: None, Location: "https://a", Message: "C"},
	}
	if fmt.Sprint(rep.Findings) != fmt.Sprint(wantFindings) {
		t.Errorf("findings\n got %+v\nwant %+v", rep.Findings, wantFindings)
	}
	if rep.Type != DAST || rep.Format != "zap-json" {
		t.Errorf("type %q format %q", rep.Type, rep.Format)
	}
}

func TestZAPErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		parts     []string
	}{
		{"riskcode 4", `{"@version":"2.14.0","site":[{"@name":"x","alerts":[{"pluginid":"7","riskcode":"4"}]}]}`, []string{"alert 7", `riskcode "4" is not 0-3`}},
		{"no site", `{"@version":"2.14.0"}`, []string{`no "site"`}},
		{"k6 summary", `{"metrics":{},"root_group":{}}`, []string{"not a ZAP report", "k6"}},
		{"site object", `{"@version":"2.14.0","site":{"@name":"x"}}`, []string{"site is an object, want an array"}},
		{"truncated", `{"@version":"2.14.0","site":[{"@name":"x","alerts":[`, []string{"truncated"}},
		{"riskcode object", `{"@version":"2.14.0","site":[{"@name":"x","alerts":[{"riskcode":{}}]}]}`, []string{"string or a number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scanParseString(zapParser, tt.doc)
			scanWantFormatError(t, err, zapName, tt.parts...)
		})
	}
}

func FuzzZAP(f *testing.F) {
	scanFuzzSeeds(f, "zap")
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := zapParser(bytes.NewReader(data), Options{})
		scanCheckFuzz(t, rep, err, "dast")
	})
}
