package evidence

import (
	"encoding/json"
	"io"
	"math"
	"sort"
	"strings"
)

// k6 end-of-test summaries, for the type perf, in both layouts k6 writes:
//
//   - `k6 run --summary-export=FILE`: metrics.NAME holds the values
//     directly ({"avg":…, "p(95)":…} for trends, {"value":…} for rates,
//     {"count":…, "rate":…} for counters);
//   - the data handed to handleSummary (and written by
//     `JSON.stringify(data)`): metrics.NAME.values holds them, next to
//     "type" and "contains".
//
// Durations are milliseconds in both.

const (
	k6Format     = "k6-summary"
	k6Name       = "k6 summary JSON"
	k6MaxMetrics = 10000
)

func k6Parser(r io.Reader, _ Options) (*Report, error) { return parseK6(r) }

// sniffK6 recognises a k6 summary from the start of a document.
func sniffK6(head []byte) bool {
	return scanSniff(head, "metrics") && scanSniffAny(head, "root_group", "http_req_duration", "iterations", "vus")
}

var _ = register(Perf, k6Format, sniffK6, k6Parser)

func parseK6(r io.Reader) (*Report, error) {
	var (
		metrics    map[string]map[string]json.RawMessage
		sawMetrics bool
		foreign    string
	)
	dec := scanDecoder(r, k6Name)
	if err := scanExpectDelim(dec, k6Name, '{', "the document"); err != nil {
		return nil, err
	}
	err := scanObject(dec, k6Name, func(key string) error {
		if key == "metrics" {
			sawMetrics = true
			metrics = map[string]map[string]json.RawMessage{}
			if err := scanExpectDelim(dec, k6Name, '{', "metrics"); err != nil {
				return err
			}
			return scanObject(dec, k6Name, func(name string) error {
				if !strings.HasPrefix(name, "http_req") && name != "checks" {
					return scanSkip(dec, k6Name) // custom and other built-in metrics
				}
				if len(metrics) >= k6MaxMetrics {
					return Errorf(k6Name, "more than %d metrics", k6MaxMetrics)
				}
				var m map[string]json.RawMessage
				if err := scanDecode(dec, k6Name, "metrics."+name, &m); err != nil {
					return err
				}
				metrics[name] = m
				return nil
			})
		}
		if f := scanForeignFormat(key); f != "" && foreign == "" {
			foreign = f
		}
		return scanSkip(dec, k6Name)
	})
	if err != nil {
		return nil, err
	}
	if err := scanExpectEnd(dec, k6Name); err != nil {
		return nil, err
	}
	if !sawMetrics {
		if foreign != "" && foreign != "a k6 summary" {
			return nil, Errorf(k6Name, "not a k6 summary: no \"metrics\"; this looks like %s", foreign)
		}
		return nil, Errorf(k6Name, "not a k6 summary: no \"metrics\"")
	}
	values := func(name string) (map[string]float64, error) {
		m, ok := metrics[name]
		if !ok {
			return nil, nil
		}
		if raw, ok := m["values"]; ok { // handleSummary layout
			var inner map[string]json.RawMessage
			if err := json.Unmarshal(raw, &inner); err != nil {
				return nil, Errorf(k6Name, "metrics.%s.values is not an object", name)
			}
			m = inner
		}
		out := map[string]float64{}
		for k, raw := range m {
			var f float64
			if json.Unmarshal(raw, &f) != nil {
				continue // thresholds, type, contains
			}
			if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
				return nil, Errorf(k6Name, "metrics.%s %q is %v, want a non-negative number", name, k, f)
			}
			out[k] = f
		}
		return out, nil
	}
	facts := map[string]any{}
	dur, err := values("http_req_duration")
	if err != nil {
		return nil, err
	}
	if dur == nil {
		return nil, Errorf(k6Name, "no http_req_duration metric: the test made no HTTP requests")
	}
	p95, ok := dur["p(95)"]
	if !ok {
		have := make([]string, 0, len(dur))
		for k := range dur {
			have = append(have, k)
		}
		sort.Strings(have)
		return nil, Errorf(k6Name, "http_req_duration has no p(95) (has %s); keep p(95) in summaryTrendStats", scanClip(strings.Join(have, ", "), 200))
	}
	facts["perf.p95_ms"] = p95
	if v, ok := dur["p(99)"]; ok {
		facts["perf.p99_ms"] = v
	}
	if v, ok := dur["avg"]; ok {
		facts["perf.avg_ms"] = v
	}
	failed, err := values("http_req_failed")
	if err != nil {
		return nil, err
	}
	if failed != nil {
		rate, ok := failed["rate"]
		if !ok {
			rate, ok = failed["value"]
		}
		if !ok || rate > 1 {
			return nil, Errorf(k6Name, "http_req_failed has no rate between 0 and 1")
		}
		facts["perf.error_rate"] = rate
	}
	reqs, err := values("http_reqs")
	if err != nil {
		return nil, err
	}
	if v, ok := reqs["count"]; ok {
		facts["perf.requests"] = v
	}
	if v, ok := reqs["rate"]; ok {
		facts["perf.rps"] = v
	}
	checks, err := values("checks")
	if err != nil {
		return nil, err
	}
	if v, ok := checks["fails"]; ok {
		facts["perf.checks_failed"] = v
	}
	return &Report{Type: Perf, Format: k6Format, Facts: facts}, nil
}
