package evidence

import (
	"bytes"
	"fmt"
	"testing"
)

func TestK6Layouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		want      map[string]any
	}{
		{
			"summary-export",
			`{"metrics":{"http_req_duration":{"avg":10,"p(95)":20,"p(99)":30,"thresholds":{"p(95)<50":false}},
				"http_req_failed":{"passes":1,"fails":9,"value":0.1},"http_reqs":{"count":10,"rate":2.5},
				"checks":{"passes":8,"fails":2,"value":0.8}},"root_group":{}}`,
			map[string]any{"perf.avg_ms": 10.0, "perf.p95_ms": 20.0, "perf.p99_ms": 30.0, "perf.error_rate": 0.1,
				"perf.requests": 10.0, "perf.rps": 2.5, "perf.checks_failed": 2.0},
		},
		{
			"handleSummary",
			`{"root_group":{},"metrics":{"http_req_duration":{"type":"trend","contains":"time","values":{"avg":1.5,"p(95)":4}},
				"http_req_failed":{"type":"rate","values":{"rate":0.25,"passes":1,"fails":3}},
				"http_reqs":{"type":"counter","values":{"count":4,"rate":1}}}}`,
			map[string]any{"perf.avg_ms": 1.5, "perf.p95_ms": 4.0, "perf.error_rate": 0.25, "perf.requests": 4.0, "perf.rps": 1.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := scanParseString(k6Parser, tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rep.Facts) != fmt.Sprint(tt.want) {
				t.Errorf("facts\n got %v\nwant %v", rep.Facts, tt.want)
			}
			if rep.Type != Perf || rep.Format != "k6-summary" {
				t.Errorf("type %q format %q", rep.Type, rep.Format)
			}
		})
	}
}

func TestK6Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		parts     []string
	}{
		{"no http", `{"metrics":{"iterations":{"count":1,"rate":1}},"root_group":{}}`, []string{"no http_req_duration"}},
		{"no p95", `{"metrics":{"http_req_duration":{"avg":1,"med":1}}}`, []string{"no p(95)", "avg, med"}},
		{"negative", `{"metrics":{"http_req_duration":{"p(95)":-1}}}`, []string{`"p(95)"`, "non-negative"}},
		{"error rate above 1", `{"metrics":{"http_req_duration":{"p(95)":1},"http_req_failed":{"value":3}}}`, []string{"http_req_failed"}},
		{"values not object", `{"metrics":{"http_req_duration":{"values":[1]}}}`, []string{"values is not an object"}},
		{"sarif", `{"version":"2.1.0","runs":[]}`, []string{"not a k6 summary", "SARIF"}},
		{"truncated", `{"metrics":{"http_req_duration":{"p(95)":`, []string{"truncated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scanParseString(k6Parser, tt.doc)
			scanWantFormatError(t, err, k6Name, tt.parts...)
		})
	}
}

func FuzzK6(f *testing.F) {
	scanFuzzSeeds(f, "k6")
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := k6Parser(bytes.NewReader(data), Options{})
		scanCheckFuzz(t, rep, err, "")
		if err == nil {
			if r, ok := rep.Facts["perf.error_rate"].(float64); ok && (r < 0 || r > 1) {
				t.Fatalf("error rate %v", r)
			}
			if _, ok := rep.Facts["perf.p95_ms"].(float64); !ok {
				t.Fatal("no perf.p95_ms without an error")
			}
		}
	})
}
