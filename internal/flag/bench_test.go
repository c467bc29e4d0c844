package flag_test

import (
	"strconv"
	"testing"

	"github.com/airlock-dev/airlock/internal/flag"
)

// BenchmarkEvaluateStatic is a flag without targeting: the target is
// 300 ns/op and 0 allocs/op.
func BenchmarkEvaluateStatic(b *testing.B) {
	s := base()
	s.Targeting, s.Fractional = nil, nil
	e := mustCompile(b, s, nil)
	c := flag.Context{TargetingKey: "user-42", Attributes: map[string]any{"email": "ann@example.com"}}
	b.ReportAllocs()
	for b.Loop() {
		if e.Evaluate(c).Reason != flag.ReasonStatic {
			b.Fatal("not static")
		}
	}
}

// BenchmarkEvaluateTargeting is a flag with a segment rule, a rule over
// a semver, an in-list and a regex, and a fractional split that decides:
// the target is 3 µs/op.
func BenchmarkEvaluateTargeting(b *testing.B) {
	s := base()
	s.Targeting[0].When = &flag.Condition{Segment: "staff"}
	s.Targeting = append(s.Targeting, flag.Rule{Name: "regex", When: &flag.Condition{All: []flag.Condition{
		{Attribute: "email", Op: flag.OpMatches, Value: `^[a-z.]+@partner\.(se|no)$`},
		{Attribute: "age", Op: flag.OpGte, Value: 18},
	}}, Variant: "on"})
	segs := map[string]flag.SegmentSpec{"staff": {When: flag.Condition{Any: []flag.Condition{
		{Attribute: "email", Op: flag.OpEndsWith, Value: "@shop.example"},
		{Attribute: "targetingKey", Op: flag.OpStartsWith, Value: "emp-"},
	}}}}
	e := mustCompile(b, s, segs)
	ctxs := make([]flag.Context, 1024)
	for i := range ctxs {
		ctxs[i] = flag.Context{TargetingKey: "user-" + strconv.Itoa(i), Attributes: map[string]any{
			"email": "ann" + strconv.Itoa(i) + "@example.com", "appVersion": "1.9.3", "country": "DK", "age": 30.0,
		}}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if e.Evaluate(ctxs[i&1023]).Reason != flag.ReasonSplit {
			b.Fatal("not split")
		}
		i++
	}
}

// BenchmarkDecodeRequest decodes a typical OFREP request body.
func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(`{"context":{"targetingKey":"user-42","email":"ann@example.com","appVersion":"2.1.0","country":"SE","age":31}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := flag.DecodeRequestBytes(body); err != nil {
			b.Fatal(err)
		}
	}
}
