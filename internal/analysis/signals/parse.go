package signals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// ResultType is the type of a Prometheus query result.
type ResultType string

// The result types this package accepts. Prometheus' "string" results
// and native histograms are refused as malformed.
const (
	ResultVector ResultType = "vector"
	ResultMatrix ResultType = "matrix"
	ResultScalar ResultType = "scalar"
)

// Sample is one value at one time. Value may be NaN or ±Inf exactly as
// Prometheus reported it; Result.Check turns NaN into an error.
type Sample struct {
	Time  time.Time
	Value float64
}

// Series is the samples of one label set. A vector has one sample per
// series, a matrix any number, a scalar one series with no labels.
type Series struct {
	Labels  map[string]string
	Samples []Sample
}

// Result is a parsed, successful Prometheus query response.
type Result struct {
	Type     ResultType
	Series   []Series
	Warnings []string
}

// Samples returns the number of samples across all series.
func (r *Result) Samples() int {
	n := 0
	for _, s := range r.Series {
		n += len(s.Samples)
	}
	return n
}

// Check returns a KindEmpty error when the result has no series or no
// samples, and a KindNaN error when any sample is NaN. A nil Check means
// the result can be judged.
func (r *Result) Check() error {
	if r.Samples() == 0 {
		return &Error{Kind: KindEmpty, Err: fmt.Errorf("the query returned no samples (%s with %d series)", r.Type, len(r.Series))}
	}
	for _, s := range r.Series {
		for _, smp := range s.Samples {
			if math.IsNaN(smp.Value) {
				return &Error{Kind: KindNaN, Err: fmt.Errorf("series %s has a NaN sample at %s", formatLabels(s.Labels), smp.Time.UTC().Format(time.RFC3339Nano))}
			}
		}
	}
	return nil
}

func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sortStrings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, l[k])
	}
	b.WriteByte('}')
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Limits bound what ParseResponse accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes   int64 // default 10 MiB
	MaxSeries  int   // default 10,000
	MaxSamples int   // default 1,000,000 across all series
}

// Default limits.
const (
	DefaultMaxBytes   = 10 << 20
	DefaultMaxSeries  = 10_000
	DefaultMaxSamples = 1_000_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxSeries <= 0 {
		l.MaxSeries = DefaultMaxSeries
	}
	if l.MaxSamples <= 0 {
		l.MaxSamples = DefaultMaxSamples
	}
	return l
}

// APIError is Prometheus' error envelope:
// {"status":"error","errorType":"...","error":"..."}.
type APIError struct {
	Type    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("prometheus error %s: %s", e.Type, e.Message)
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

type dataEnvelope struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
	Stats      json.RawMessage `json:"stats"`
}

type rawSeries struct {
	Metric map[string]string   `json:"metric"`
	Value  []json.RawMessage   `json:"value"`
	Values [][]json.RawMessage `json:"values"`
}

// ReadResponse reads at most l.MaxBytes from r and parses it with
// ParseResponse. A body longer than the limit is a KindTooLarge error.
func ReadResponse(r io.Reader, l Limits) (*Result, error) {
	l = l.withDefaults()
	body, err := io.ReadAll(io.LimitReader(r, l.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	return ParseResponse(body, l)
}

// ParseResponse parses a Prometheus HTTP API query response strictly:
// unknown fields, missing fields, trailing data, sample values that are
// not a decimal number, "NaN", "+Inf" or "-Inf", and results beyond the
// limits are refused. The error envelope comes back as a KindAPI *Error
// wrapping an *APIError; everything else as KindMalformed or KindTooLarge.
func ParseResponse(body []byte, l Limits) (*Result, error) {
	l = l.withDefaults()
	if int64(len(body)) > l.MaxBytes {
		return nil, &Error{Kind: KindTooLarge, Err: fmt.Errorf("response is larger than the %d-byte limit", l.MaxBytes)}
	}
	var env envelope
	if err := decodeStrict(body, &env); err != nil {
		return nil, malformed("response: %v", err)
	}
	switch env.Status {
	case "error":
		if env.ErrorType == "" && env.Error == "" {
			return nil, malformed(`response has status "error" but neither errorType nor error`)
		}
		return nil, &Error{Kind: KindAPI, APIType: env.ErrorType, Err: &APIError{Type: env.ErrorType, Message: env.Error}}
	case "success":
	default:
		return nil, malformed("response status is %q, want \"success\" or \"error\"", env.Status)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil, malformed("successful response has no data")
	}
	var data dataEnvelope
	if err := decodeStrict(env.Data, &data); err != nil {
		return nil, malformed("data: %v", err)
	}
	if len(data.Result) == 0 {
		return nil, malformed("data has no result")
	}
	res := &Result{Type: ResultType(data.ResultType), Warnings: env.Warnings}
	switch res.Type {
	case ResultScalar:
		var pair []json.RawMessage
		if err := decodeStrict(data.Result, &pair); err != nil {
			return nil, malformed("scalar result: %v", err)
		}
		smp, err := parsePair(pair)
		if err != nil {
			return nil, malformed("scalar result: %v", err)
		}
		res.Series = []Series{{Labels: map[string]string{}, Samples: []Sample{smp}}}
		return res, nil
	case ResultVector, ResultMatrix:
	default:
		return nil, malformed("result type %q is not supported (want vector, matrix or scalar)", data.ResultType)
	}
	var raw []json.RawMessage
	if err := decodeStrict(data.Result, &raw); err != nil {
		return nil, malformed("%s result: %v", res.Type, err)
	}
	if raw == nil {
		return nil, malformed("%s result is null", res.Type)
	}
	if len(raw) > l.MaxSeries {
		return nil, &Error{Kind: KindTooLarge, Err: fmt.Errorf("result has %d series, more than the limit of %d", len(raw), l.MaxSeries)}
	}
	total := 0
	res.Series = make([]Series, 0, len(raw))
	for i, r := range raw {
		var rs rawSeries
		if err := decodeStrict(r, &rs); err != nil {
			return nil, malformed("series %d: %v", i, err)
		}
		if rs.Metric == nil {
			return nil, malformed("series %d has no metric", i)
		}
		s := Series{Labels: rs.Metric}
		if res.Type == ResultVector {
			if rs.Values != nil || rs.Value == nil {
				return nil, malformed(`vector series %d needs "value" and no "values"`, i)
			}
			smp, err := parsePair(rs.Value)
			if err != nil {
				return nil, malformed("series %d: %v", i, err)
			}
			s.Samples = []Sample{smp}
		} else {
			if rs.Value != nil || rs.Values == nil {
				return nil, malformed(`matrix series %d needs "values" and no "value"`, i)
			}
			if total+len(rs.Values) > l.MaxSamples {
				return nil, &Error{Kind: KindTooLarge, Err: fmt.Errorf("result has more than the limit of %d samples", l.MaxSamples)}
			}
			s.Samples = make([]Sample, 0, len(rs.Values))
			for j, v := range rs.Values {
				smp, err := parsePair(v)
				if err != nil {
					return nil, malformed("series %d sample %d: %v", i, j, err)
				}
				s.Samples = append(s.Samples, smp)
			}
		}
		total += len(s.Samples)
		if total > l.MaxSamples {
			return nil, &Error{Kind: KindTooLarge, Err: fmt.Errorf("result has more than the limit of %d samples", l.MaxSamples)}
		}
		res.Series = append(res.Series, s)
	}
	return res, nil
}

func malformed(format string, args ...any) *Error {
	return &Error{Kind: KindMalformed, Err: fmt.Errorf(format, args...)}
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// parsePair parses the elements of [<unix seconds>, "<value>"].
func parsePair(pair []json.RawMessage) (Sample, error) {
	if len(pair) != 2 {
		return Sample{}, fmt.Errorf("sample has %d elements, want [time, \"value\"]", len(pair))
	}
	// A JSON number, not a string holding one (json.Number would take both).
	if len(pair[0]) == 0 || pair[0][0] < '0' || pair[0][0] > '9' {
		return Sample{}, fmt.Errorf("sample time %s is not a non-negative number", pair[0])
	}
	sec, err := strconv.ParseFloat(string(pair[0]), 64)
	if err != nil || math.IsInf(sec, 0) || math.IsNaN(sec) || sec < 0 || sec > 1e11 {
		return Sample{}, fmt.Errorf("sample time %s is out of range", pair[0])
	}
	var vs string
	if raw := pair[1]; len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 {
		vs = string(raw[1 : len(raw)-1]) // the common case: no escapes
	} else if err := json.Unmarshal(raw, &vs); err != nil {
		return Sample{}, fmt.Errorf("sample value %s is not a string", raw)
	}
	v, err := ParseValue(vs)
	if err != nil {
		return Sample{}, err
	}
	whole, frac := math.Modf(sec)
	return Sample{Time: time.Unix(int64(whole), int64(math.Round(frac*1e3))*1e6).UTC(), Value: v}, nil
}

// ParseValue parses a Prometheus sample value: a decimal number, "NaN",
// "+Inf" or "-Inf". It refuses hexadecimal, underscores, spelled-out
// "Infinity" and numbers that overflow float64.
func ParseValue(s string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	if s == "" || strings.ContainsAny(s, "xXpP_iInN") {
		return 0, fmt.Errorf("sample value %q is not a number", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q is not a number", s)
	}
	return v, nil
}
